"""Training configuration: flag validation and the documented default flagfile."""

from pathlib import Path

import pytest
from absl import flags

from cvae_tf import config, flag_fields
from cvae_tf.data import POSITION_COLUMNS
from cvae_tf.errors import UserInputError

REPO = Path(__file__).resolve().parents[1]
FLAGS = set(flag_fields.flag_names(config.TrainConfig))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(hidden_dim=0), "--hidden_dim=0; expected an integer ≥ 1"),
        (dict(num_layers=-1), "--num_layers=-1"),
        (dict(latent_dim=-1), "--latent_dim=-1; expected an integer ≥ 0"),
        (dict(batch_size=0), "--batch_size=0"),
        (dict(epochs=0), "--epochs=0"),
        (dict(patience=-1), "--patience=-1; expected an integer ≥ 0"),
        (dict(learning_rate=0.0), "--learning_rate=0.0; expected a number > 0"),
        (dict(beta=-1.0), "--beta=-1.0; expected a number ≥ 0"),
        (dict(l1=-0.1), "--l1=-0.1"),
        (dict(l2=float("nan")), "--l2=nan"),
        (dict(min_delta_factor=1.0), r"--min_delta_factor=1.0; expected a number in \[0, 1\)"),
        (dict(train_fraction=1.5), r"--train_fraction=1.5; expected a number in \(0, 1\)"),
        (dict(val_fraction=0.0), "--val_fraction=0.0"),
        (dict(train_fraction=0.9, val_fraction=0.1), "leaves no test events"),
        (dict(position_columns=("cx", "cy")), "--position_columns has 2 names"),
        (dict(momentum_columns=("a",) * 9), "expected 9 distinct names"),
        (dict(momentum_columns=POSITION_COLUMNS), "share"),
        (dict(activation="sigmoidal"), "--activation='sigmoidal' is not a keras activation"),
        (dict(data="/no/such/file.csv"), "--data='/no/such/file.csv' is not a file"),
        (dict(data="/no/such/shards-*.csv"), "--data pattern '/no/such/shards-\\*.csv' matches no"),
        (dict(shuffle_buffer=0), "--shuffle_buffer=0; expected an integer ≥ 1"),
        (dict(run_name="a/b"), "expected a plain folder name"),
    ],
)
def test_bad_values_are_refused_with_the_flag_named(change, message):
    with pytest.raises(UserInputError, match=message) as error:
        config.replace(config.TrainConfig(), **change)
    assert "\n" not in str(error.value)


def test_defaults_are_valid_and_resolve_to_ocs_and_its_columns():
    validated = config.validate(config.TrainConfig())
    assert validated.data.molecule.labels == ("C", "O", "S")
    assert validated.data.molecule.charges == (2, 2, 2)
    assert validated.data.position_columns == ("cx", "cy", "cz", "ox", "oy", "oz", "sx", "sy", "sz")
    assert validated.data.momentum_columns[:3] == ("pcx", "pcy", "pcz")
    assert config.validate(validated) == validated


def test_the_default_flagfile_states_the_real_defaults():
    flag_values = flags.FlagValues()
    config.define_flags(flag_values)
    flag_values(["train", f"--flagfile={REPO / 'flags' / 'default.cfg'}"])
    assert config.from_flags(flag_values) == config.validate(config.TrainConfig())


def test_the_default_flagfile_spells_out_every_flag():
    lines = (REPO / "flags" / "default.cfg").read_text().splitlines()
    named = {line.split("=")[0].lstrip("-") for line in lines if line.startswith("--")}
    named = {name[2:] if name not in FLAGS and name.startswith("no") else name for name in named}
    assert named == FLAGS
