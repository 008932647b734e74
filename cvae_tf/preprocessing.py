"""Invertible normalization of positions and momenta with keras' own `Normalization` layer."""

import keras
import numpy as np

NORMALIZATIONS = ("none", "standard", "minmax")
_NEGLIGIBLE_SPREAD = 1e-6  # relative to the widest column


def normalization_statistics(method: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-column offset and variance that map `values` (events, features) as `method` asks.

    keras' `Normalization` computes (x − mean)/√variance. Its `adapt` only knows the standard
    statistics, but min–max scaling is the same affine map with mean = min and
    variance = (max − min)², so one layer type (and its `invert=True`) serves every method.
    A constant column keeps variance 1 so nothing is divided by zero; so does a column whose
    spread is under a millionth of the widest column's, which is round-off around a constant
    (the out-of-plane coordinate in the momentum frame), not a signal worth amplifying.

    Args:
      method: one of NORMALIZATIONS.
      values: the training split only, shaped (events, features).

    Returns:
      (offset, variance), each shaped (features,), float64.
    """
    values = np.asarray(values, dtype=np.float64)
    num_features = values.shape[-1]
    if method == "none":
        return np.zeros(num_features), np.ones(num_features)
    if method == "standard":
        offset, spread = values.mean(axis=0), values.std(axis=0)
    elif method == "minmax":
        offset, spread = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
    else:
        raise ValueError(f"unknown normalization {method!r}; expected one of {NORMALIZATIONS}")
    spread = np.where(spread > _NEGLIGIBLE_SPREAD * np.max(spread, initial=0.0), spread, 1.0)
    return offset, np.square(spread)


def normalization_layers(
    offset, variance, name: str
) -> tuple[keras.layers.Normalization, keras.layers.Normalization]:
    """A (forward, inverse) pair of `Normalization` layers, (x − offset)/√variance and back."""
    forward = keras.layers.Normalization(mean=offset, variance=variance, name=f"{name}_normalize")
    inverse = keras.layers.Normalization(
        mean=offset, variance=variance, invert=True, name=f"{name}_denormalize"
    )
    return forward, inverse
