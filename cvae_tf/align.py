"""`python -m cvae_tf.align`: rewrite a CSV with positions rotated into their momenta's frame."""

from pathlib import Path

import numpy as np
from absl import flags

from cvae_tf import cli, csv_alignment, flag_fields


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The align command's flags: the event file's, --output and --overwrite."""
    flag_fields.define_flags(csv_alignment.AlignConfig, flag_values)


def execute(flag_values: flags.FlagValues) -> None:
    """Checks the flags, aligns every event, writes the CSV and prints the mismatch figures."""
    config = flag_fields.from_flags(csv_alignment.AlignConfig, flag_values)
    before, after = csv_alignment.align_file(config)
    print("Forward mismatch |p_simulated − p_given| / |p_given| per event:")
    print(f"  before alignment  median {np.median(before):.3g}, max {np.max(before):.3g}")
    print(f"  after alignment   median {np.median(after):.3g}, max {np.max(after):.3g}")
    print(
        f"Wrote {len(after)} events with aligned, centre-of-mass-relative positions (bohr) to "
        f"{Path(config.output)}"
    )


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
