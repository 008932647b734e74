"""CSVLogger's history file read back (a resumed epoch once, a cut line skipped) and rewritten."""

import math

from cvae_tf import epoch_history


def test_a_redone_epoch_counts_once_and_a_cut_line_is_skipped(tmp_path):
    path = tmp_path / "history.csv"
    # Epoch 1 written, killed before its backup, redone after --resume; the last line was cut.
    path.write_text("epoch,loss,val_loss\n0,3.0,4.0\n1,2.5,NA\n1,2.0,3.0\n2,1.5\n")
    history = epoch_history.read_history(path)
    assert history == {"loss": [3.0, 2.0], "val_loss": [4.0, 3.0]}


def test_csvloggers_na_reads_as_nan(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,learning_rate\n0,1.0,NA\n")
    history = epoch_history.read_history(path)
    assert history["loss"] == [1.0] and math.isnan(history["learning_rate"][0])


def test_written_as_csvlogger_writes_and_read_back_unchanged(tmp_path):
    path = tmp_path / "history.csv"
    history = {"val_loss": [4.0, 3.0], "loss": [3.0, 2.0]}
    epoch_history.write_history(path, history)
    assert path.read_text() == "epoch,loss,val_loss\n0,3.0,4.0\n1,2.0,3.0\n"
    assert epoch_history.read_history(path) == history
