"""What the training benchmarks share: the wall-clock seconds of each epoch."""

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)
