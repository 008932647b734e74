"""The SavedModel a run exports: raw momenta in, raw positions out, usable without our code."""

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf
from absl import logging
from google.protobuf.message import DecodeError

from cvae_tf import molecule, serving
from cvae_tf.errors import UserInputError

SAVED_MODEL_DIR = "saved_model"


def export_saved_model(
    cvae: keras.Model, path: str | Path, fragments: molecule.Molecule = molecule.OCS
) -> None:
    """Writes a TensorFlow SavedModel with three endpoints and the molecule it was trained on.

    `serve(momenta)`: float32 [batch, 3n] momenta (a.u.) in the model's momentum-column order to
    one posterior sample of positions (bohr) [batch, 3n]; normalization, latent sampling from the
    training latent distribution and inverse normalization happen inside.
    `decode(momenta, latent)`: the decoder's mean positions (bohr) for caller-given latent
    vectors [batch, latent_dim], for reproducible predictions and for checking the export
    against the in-memory model.
    `moments(momenta)`: one latent draw per event, the decoder's mean (bohr) and variance
    (bohr², recalibrated) side by side, [batch, 6n]; K calls make the predictive mixture.
    `molecule()`: the molecule file's JSON (molecule.Molecule.to_dict) as a string tensor, so
    the SavedModel alone says which fragments and charges its columns hold.

    This is `model.export(path)` (which makes only `serve`) spelled out with keras'
    `ExportArchive`, the tool `model.export` itself uses, to add the other endpoints. `serve`
    and `moments` are the model's `call` and `sample_moments` fused for speed (serving.py);
    `decode` is the model's own code, the reference they are checked against.
    """
    momenta_spec = tf.TensorSpec(shape=(None, cvae.num_features), dtype=tf.float32, name="momenta")
    latent_spec = tf.TensorSpec(shape=(None, cvae.latent_dim), dtype=tf.float32, name="latent")
    serve, moments = serving.sampling_endpoints(cvae)
    archive = keras.export.ExportArchive()
    archive.track(cvae)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[momenta_spec])
    archive.add_endpoint(
        name="decode", fn=cvae.decode_positions, input_signature=[momenta_spec, latent_spec]
    )
    archive.add_endpoint(name="moments", fn=moments, input_signature=[momenta_spec])
    description = tf.constant(json.dumps(fragments.to_dict(), ensure_ascii=False))
    archive.add_endpoint(name="molecule", fn=lambda: description, input_signature=[])
    # TensorFlow logs each asset and signature renaming at INFO through absl: noise for users.
    with _absl_verbosity(logging.WARNING):
        archive.write_out(str(path), verbose=False)


@contextlib.contextmanager
def _absl_verbosity(level: int) -> Iterator[None]:
    """Only absl log records at `level` or above meanwhile (TensorFlow's Python logs there)."""
    verbosity = logging.get_verbosity()
    logging.set_verbosity(level)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def load_saved_model(path: str | Path, folder_flag: str = "--model_dir"):
    """The exported endpoints (`.serve`, `.decode`, `.moments`) via tf.saved_model.load.

    Only tf.saved_model.load: a SavedModel is a TensorFlow graph and its variables, nothing of
    Python is unpickled or imported from it. A missing, truncated or garbled file in it is a
    UserInputError naming the folder and the file, raised before any output is written: the
    endpoints are called once on one event, which runs every variable the answers depend on.
    """
    path = Path(path)
    where = f"{folder_flag}='{path.parent}'"
    _check_saved_model_files(path, where)
    try:
        # The variables are restored during load (a truncated data file fails here, not later).
        # A damaged fingerprint.pb, a checksum the load does not need, TensorFlow logs as an
        # error with a traceback and loads on: quiet, so stderr keeps to our one line. What
        # does stop the load it raises, and that is caught here.
        with _absl_verbosity(logging.FATAL):
            serving = tf.saved_model.load(str(path))
    except (OSError, ValueError, IndexError, tf.errors.OpError) as error:
        # OSError: unreadable file; ValueError: a graph without meta graphs; IndexError ("Read
        # less bytes than requested") and OpError (DataLossError: checksum) from the variables'
        # reader: the kinds TensorFlow 2.21 raises for the damaged files we tried.
        raise UserInputError(
            f"{where} has a damaged {SAVED_MODEL_DIR}/variables (truncated or garbled): "
            f"{_first_line(error)}; retrain, or copy the run folder again"
        ) from None
    missing = [name for name in ENDPOINTS if not hasattr(serving, name)]
    if missing:
        raise UserInputError(
            f"{where}: its SavedModel lacks the endpoints {missing}; expected a SavedModel "
            "exported by cvae_tf.train"
        )
    _check_first_call(serving, where)
    return serving


def saved_molecule(serving, where: str = "--model_dir") -> molecule.Molecule:
    """The molecule a loaded SavedModel was trained on (its `molecule` endpoint)."""
    try:
        values = json.loads(serving.molecule().numpy().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, tf.errors.OpError) as error:
        raise UserInputError(
            f"{where}: its SavedModel's molecule is unreadable: {_first_line(error)}"
        ) from None
    return molecule.from_dict(values, f"{where} (its SavedModel's molecule)")


ENDPOINTS = ("serve", "decode", "moments", "molecule")


def _check_saved_model_files(path: Path, where: str) -> None:
    """Refuses a SavedModel folder whose files are missing or whose graph is no protobuf."""
    from tensorflow.core.protobuf import saved_model_pb2  # the SavedModel's own message type

    variables = path / "variables"
    needed = [path / "saved_model.pb", variables / "variables.index"]
    missing = [str(file.relative_to(path.parent)) for file in needed if not file.is_file()]
    if not list(variables.glob("variables.data-*")):
        missing.append(f"{SAVED_MODEL_DIR}/variables/variables.data-*")
    if missing:
        raise UserInputError(
            f"{where} lacks {', '.join(missing)}: an incomplete run folder; retrain, or copy "
            "the run folder again"
        )
    graph = saved_model_pb2.SavedModel()
    try:
        graph.ParseFromString((path / "saved_model.pb").read_bytes())
    except OSError as error:
        raise UserInputError(
            f"{where} has an unreadable {SAVED_MODEL_DIR}/saved_model.pb: {error.strerror}"
        ) from None
    except DecodeError:
        graph.Clear()
    if not graph.meta_graphs:  # junk bytes, or an empty or truncated file
        raise UserInputError(
            f"{where} has a damaged {SAVED_MODEL_DIR}/saved_model.pb (not a SavedModel "
            "protobuf): retrain, or copy the run folder again"
        )


def _check_first_call(serving, where: str) -> None:
    """Calls `decode` on one event: deterministic, so the sampler's state stays as it was."""
    momenta_spec, latent_spec = serving.decode.concrete_functions[0].structured_input_signature[0]
    num_features = momenta_spec.shape[-1]
    try:
        decoded = serving.decode(
            tf.zeros((1, num_features), tf.float32),
            tf.zeros((1, latent_spec.shape[-1]), tf.float32),
        )
    except (ValueError, TypeError, tf.errors.OpError) as error:
        # ValueError/TypeError: an input signature other than cvae_tf's; OpError: a variable
        # that fails to read at its first use.
        raise UserInputError(
            f"{where}: its SavedModel fails on one event: {_first_line(error)}"
        ) from None
    if tuple(decoded.shape) != (1, num_features):
        raise UserInputError(
            f"{where}: its SavedModel gives positions of shape {tuple(decoded.shape)} for one "
            f"event; expected (1, {num_features})"
        )


def _first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 200 characters: one line for the user."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200]
