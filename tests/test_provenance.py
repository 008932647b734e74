"""A run's provenance: flags.cfg retrains the same run, run.json names versions, command, data."""

import hashlib
import importlib.metadata
import json
import re
import shlex

from absl import flags

from cvae_tf import config, flag_fields, molecule, provenance, training
from tests.conftest import REPO, quick_config


def _parsed(flagfile, *extra) -> config.TrainConfig:
    """The TrainConfig that `python -m cvae_tf.train --flagfile=<flagfile> extra...` builds."""
    flag_values = flags.FlagValues()
    config.define_flags(flag_values)
    flag_values(["train", f"--flagfile={flagfile}", *extra])
    return config.from_flags(flag_values)


def test_flagfile_reads_back_as_the_same_configuration(events_csv, tmp_path, monkeypatch):
    """Every setting survives: floats to the last bit, lists, flipped booleans, a molecule file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.json").write_text(json.dumps(molecule.OCS.to_dict()))
    run = quick_config(
        events_csv,
        tmp_path / "runs",
        run_name="original",
        molecule="mine.json",  # relative: flags.cfg names it absolutely
        charges=("1", "1", "1"),
        learning_rate=0.1 + 0.2,  # 0.30000000000000004
        min_learning_rate=1e-7,
        check_data=True,
        recalibrate=False,
        center="com",
        seed=12345,
        resume=False,
    )
    path = tmp_path / "flags.cfg"
    path.write_text(provenance.flagfile_text(run))
    monkeypatch.chdir(REPO)  # a retrain from another folder
    again = _parsed(path, "--output_dir=elsewhere", "--run_name=retrain")
    expected = config.replace(
        run, molecule=str(tmp_path / "mine.json"), output_dir="elsewhere", run_name="retrain"
    )
    assert again == expected
    assert again.optimization.learning_rate == 0.30000000000000004
    assert again.data.files == (events_csv,)


def test_flagfile_leaves_the_folder_to_the_retrain_and_starts_afresh(events_csv, tmp_path):
    run = quick_config(events_csv, tmp_path, run_name="original", overwrite=True)
    text = provenance.flagfile_text(run)
    assert f"# --output_dir={tmp_path}\n" in text and "# --run_name=original\n" in text
    assert "\n--nooverwrite\n" in text and "\n--noresume\n" in text
    lines = [line for line in text.splitlines() if line.startswith("--")]
    named = {re.match(r"--(?:no)?([a-z_0-9]+)", line).group(1) for line in lines}
    # Every flag once, commented out or not.
    assert named | {"output_dir", "run_name"} == set(flag_fields.flag_names(config.TrainConfig))
    assert len(lines) == len(named)
    # Without a run name the retrain gets a timestamp, and the defaults' folder.
    parsed = _parsed(_write(tmp_path / "flags.cfg", text))
    assert parsed.output == config.OutputConfig()


def _write(path, text):
    path.write_text(text)
    return path


def test_version_comes_from_pyproject_without_an_installed_distribution(monkeypatch, tmp_path):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = (REPO / "pyproject.toml").read_text()
    project = pyproject.split("[project]", 1)[1]
    expected = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    assert provenance.package_version() == expected
    monkeypatch.setattr(provenance, "PYPROJECT", tmp_path / "missing.toml")
    assert provenance.package_version() == "unknown"
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.8.7")
    assert provenance.package_version() == "9.8.7"


def test_command_line_is_quoted_for_a_shell():
    argv = ["/repo/cvae_tf/train.py", "--data=my events.csv", "--seed=3"]
    line = provenance.command_line(argv)
    assert line == "python -m cvae_tf.train '--data=my events.csv' --seed=3"
    assert shlex.split(line)[3:] == argv[1:]


def test_run_json_records_version_command_and_the_data_digest(quick_run, events_csv):
    run_dir, _ = quick_run
    recorded = json.loads((run_dir / "run.json").read_text())
    assert recorded["cvae_tf_version"] == provenance.package_version()
    assert shlex.split(recorded["command_line"])[:4] == [
        "python",
        "-m",
        "cvae_tf.train",
        "--flagfile=flags/quick.cfg",
    ]
    digest = hashlib.sha256(events_csv.read_bytes()).hexdigest()
    assert recorded["data_sha256"] == digest
    assert recorded["data_files_sha256"] == {str(events_csv): digest}


def test_retrain_from_flags_cfg_gives_the_same_metrics(quick_run, tmp_path):
    """The run folder's flags.cfg alone (and a new folder) retrains the run bit for bit."""
    run_dir, _ = quick_run
    retrain = _parsed(
        run_dir / provenance.FLAGFILE, f"--output_dir={tmp_path}", "--run_name=retrain"
    )
    # Every flag as config.json recorded it, but the folder.
    recorded = json.loads((run_dir / "config.json").read_text())
    folder = {"output_dir": str(tmp_path), "run_name": "retrain"}
    assert json.loads(retrain.to_json()) == {**recorded, **folder}
    result = training.train(retrain, verbose=0)
    # Bit-identical: JSON keeps every float's shortest repr.
    assert (result.run_dir / "metrics.json").read_text() == (run_dir / "metrics.json").read_text()
    assert json.loads((result.run_dir / "run.json").read_text())["command_line"] == (
        provenance.LIBRARY_CALL
    )
