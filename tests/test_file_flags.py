"""The file flags' rules: nine distinct column names each, and an --output that loses nothing."""

import pytest

from cvae_tf import data, file_flags
from cvae_tf.errors import UserInputError

POSITIONS, MOMENTA = data.POSITION_COLUMNS, data.MOMENTUM_COLUMNS


@pytest.mark.parametrize(
    "positions, momenta, message",
    [
        (POSITIONS[:8], MOMENTA, "--position_columns has 8 names"),
        (POSITIONS, (*MOMENTA[:8], MOMENTA[0]), "--momentum_columns has 9 names .* 9 distinct"),
        ((*POSITIONS[:8], ""), MOMENTA, "--position_columns has 9 names"),
        (POSITIONS, (*MOMENTA[:8], "cx"), r"share \['cx'\]"),
    ],
)
def test_column_lists_that_cannot_name_nine_coordinates_each_are_refused(
    positions, momenta, message
):
    with pytest.raises(UserInputError, match=message):
        file_flags.check_column_names(positions, momenta)


def test_the_default_columns_pass():
    file_flags.check_column_names(POSITIONS, MOMENTA)


def test_output_paths_that_would_lose_data_are_refused(tmp_path):
    existing = tmp_path / "existing.csv"
    existing.write_text("kept\n")
    cases = [
        ((None, False), "--output is required"),
        ((existing, False), "exists; pass --overwrite"),
        ((tmp_path, True), "is a folder"),
        ((tmp_path / "missing" / "out.csv", False), "folder .* is missing"),
    ]
    for arguments, message in cases:
        with pytest.raises(UserInputError, match=message):
            file_flags.check_output_path(*arguments)
    with pytest.raises(UserInputError, match="is the input file"):
        file_flags.check_output_path(existing, True, input_path=existing)
    assert existing.read_text() == "kept\n"


def test_an_output_path_that_loses_nothing_is_returned(tmp_path):
    existing = tmp_path / "existing.csv"
    existing.write_text("old\n")
    assert file_flags.check_output_path(tmp_path / "new.csv", False) == tmp_path / "new.csv"
    assert file_flags.check_output_path(str(existing), True) == existing  # --overwrite
