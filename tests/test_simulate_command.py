"""`python -m cvae_tf.simulate` as a user runs it: the CSV it writes and every refused input."""

import numpy as np
import pandas as pd
import pytest

from cvae_tf import data, physics


def simulate(run_command, output, *args):
    return run_command("simulate", "--num_events=300", f"--output={output}", *args)


def test_writes_the_csv_and_says_where(run_command, tmp_path):
    output = tmp_path / "events.csv"
    result = simulate(run_command, output, "--seed=4")
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout and "300" in result.stdout
    table = pd.read_csv(output)
    assert list(table.columns) == [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]
    assert len(table) == 300
    positions = data.to_events_array(table[list(data.POSITION_COLUMNS)].to_numpy())
    momenta = data.to_events_array(table[list(data.MOMENTUM_COLUMNS)].to_numpy())
    # Written with 12 significant digits, the file still balances the energy to ~1e-11.
    ratio = physics.kinetic_energy(momenta) / physics.potential_energy(positions)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-8)


def test_same_seed_gives_the_same_bytes(run_command, tmp_path):
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "c.csv")]
    flags = ("--zero_point_momentum_spread=3", "--detector_momentum_noise=1")
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        assert simulate(run_command, path, f"--seed={seed}", *flags).returncode == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_flags_reach_the_simulation(run_command, tmp_path):
    output = tmp_path / "fixed.csv"
    args = ("--orientation=fixed", "--angle_mean=120", "--angle_spread=0", "--co_bond_spread=0")
    assert simulate(run_command, output, *args).returncode == 0
    table = pd.read_csv(output)
    positions = data.to_events_array(table[list(data.POSITION_COLUMNS)].to_numpy())
    np.testing.assert_array_equal(positions[..., 2], 0.0)
    np.testing.assert_allclose(physics.bend_angle(positions), 120.0, atol=1e-8)
    np.testing.assert_allclose(physics.bond_lengths(positions)[:, 0], 2.15429, atol=1e-5)


def test_overwrite_replaces_an_existing_file(run_command, tmp_path):
    output = tmp_path / "events.csv"
    output.write_text("old\n")
    assert simulate(run_command, output, "--overwrite").returncode == 0
    assert len(pd.read_csv(output)) == 300


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--num_events=10"], "--output"),
        (["--num_events=10", "--output={tmp}/missing/events.csv"], "--output"),
        (["--num_events=10", "--output={tmp}/existing.csv"], "--output"),
        (["--num_events=10", "--output={tmp}"], "--output"),
        (["--num_events=0", "--output={tmp}/events.csv"], "--num_events"),
        (["--num_events=-5", "--output={tmp}/events.csv"], "--num_events"),
        (["--co_bond_spread=-1", "--output={tmp}/events.csv"], "--co_bond_spread"),
        (["--cs_bond_mean=0", "--output={tmp}/events.csv"], "--cs_bond_mean"),
        (["--angle_mean=200", "--output={tmp}/events.csv"], "--angle_mean"),
        (["--zero_point_momentum_spread=-2", "--output={tmp}/events.csv"], "--zero_point"),
        (["--detector_momentum_noise=nan", "--output={tmp}/events.csv"], "--detector"),
        (["--orientation=tilted", "--output={tmp}/events.csv"], "--orientation"),
        (["--seed=-1", "--output={tmp}/events.csv"], "--seed"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(run_command, tmp_path, args, flag):
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    before = sorted(tmp_path.rglob("*"))
    result = run_command("simulate", *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr
    assert sorted(tmp_path.rglob("*")) == before
    assert existing.read_text() == "keep me\n"
