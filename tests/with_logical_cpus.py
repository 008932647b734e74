"""Runs a cvae_tf command with the CPU split into N logical devices, as a multi-device machine.

  python tests/with_logical_cpus.py N train --distribution=mirrored ...

Logical devices must be configured before TensorFlow's runtime starts, so this wrapper does it
first and then runs `python -m cvae_tf.<command>` in the same process.
"""

import runpy
import sys

import tensorflow as tf


def main() -> None:
    num_devices, command, *args = sys.argv[1:]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(num_devices)
    )
    sys.argv = [f"cvae_tf.{command}", *args]
    runpy.run_module(f"cvae_tf.{command}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
