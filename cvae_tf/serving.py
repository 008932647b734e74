"""The SavedModel's sampling endpoints, fused: XLA around the decoder network, a block at a time.

`serve` and `moments` compute what the CVAE's `call` and `sample_moments` compute, with the same
draws from the same seed generator, in three stages (model.py): the frame rotation,
normalization and latent vector (`decoder_inputs`), the decoder network, and the draw or the
moments rotated back (`positions_sample`, `lab_moments`). The first and last are XLA-compiled,
each into one or two fused loops over the rows, where TensorFlow's graph ran some forty small
kernels one after another; the network stays a TensorFlow graph, whose Dense layers oneDNN fuses
with their bias and activation (and runs faster than XLA's matmuls here). Measured in README,
Speed.

XLA compiles a stage once per row count, so a block's rows are padded up to the next of BUCKETS
for the two compiled stages (never for the network): any batch size compiles each at most
len(BUCKETS) times, about 0.15 s each. Batches beyond BLOCK_ROWS go through in blocks of that
many rows, which keeps the network's activations in cache: 65,536 rows at once ran 1.3× slower.
"""

from collections.abc import Callable

import tensorflow as tf
from keras import ops

BLOCK_ROWS = 8192  # events per pass through the network
BUCKETS = (1024, 2048, 4096, BLOCK_ROWS)  # row counts the compiled stages see


def sampling_endpoints(cvae, network: Callable | None = None) -> tuple[Callable, Callable]:
    """(serve, moments): functions of momenta (a.u.) [batch, 3n] for the SavedModel's endpoints.

    `serve` gives one posterior draw of positions (bohr) [batch, 3n], as `cvae.call`; `moments`
    one latent draw's decoder mean (bohr) and variance (bohr²) side by side [batch, 6n], as
    `cvae.sample_moments`. Both draw for the whole batch first, as those do, so the seed
    generator gives them the same noise whatever the blocks. `network` maps the decoder's
    features to its (mean, log-variance) heads: `cvae.decoder` unless given (a benchmark's
    variant).
    """
    network = network or cvae.decoder
    decoder_inputs = _compiled(cvae.decoder_inputs)
    positions_sample = _compiled(cvae.positions_sample)
    lab_moments = _compiled(
        lambda rotations, decoded: ops.concatenate(cvae.lab_moments(rotations, decoded), axis=-1)
    )
    width = cvae.num_features

    def decoded_rows(momenta, latent_vectors, rows):
        """The rotations and the decoder's output for `rows` events of a padded block."""
        rotations, features = decoder_inputs(momenta, latent_vectors)
        bucket = ops.shape(momenta)[0]
        decoded = [_padded(table, bucket) for table in network(features[:rows])]
        return rotations, decoded

    def serve_block(momenta, latent_vectors, noise, rows):
        rotations, decoded = decoded_rows(momenta, latent_vectors, rows)
        return positions_sample(rotations, decoded, noise)

    def moments_block(momenta, latent_vectors, rows):
        rotations, decoded = decoded_rows(momenta, latent_vectors, rows)
        return lab_moments(rotations, decoded)

    def serve(momenta):
        rows = ops.shape(momenta)[0]
        latent_vectors = cvae.latent_distribution.sample(rows)
        noise = cvae.latent_distribution.standard_normal((rows, width), cvae.compute_dtype)
        return _in_blocks(serve_block, [momenta, latent_vectors, noise], width)

    def moments(momenta):
        rows = ops.shape(momenta)[0]
        latent_vectors = cvae.latent_distribution.sample(rows)
        return _in_blocks(moments_block, [momenta, latent_vectors], 2 * width)

    return serve, moments


def _compiled(stage: Callable) -> Callable:
    """`stage` as an XLA-compiled tf.function (no AutoGraph: the stages have no control flow)."""
    return tf.function(stage, jit_compile=True, autograph=False)


def _padded(table, rows):
    """`table` [r, k] with zero rows appended up to `rows` (the table itself when r = rows)."""
    return tf.pad(table, [[0, rows - tf.shape(table)[0]], [0, 0]])


def _bucket(rows):
    """The smallest of BUCKETS holding `rows` (1 ≤ rows ≤ BLOCK_ROWS)."""
    return tf.gather(BUCKETS, tf.searchsorted(BUCKETS, tf.reshape(rows, (1,))))[0]


def _in_blocks(block_output: Callable, tables, width: int):
    """block_output(*tables padded to a bucket, rows) for BLOCK_ROWS rows at a time, [batch, width].

    Each table's first axis runs over the same events; the blocks' outputs, cut to their rows,
    are stacked in order. A batch of one block skips the loop (7 % faster at 1,024 rows).
    """
    rows = tf.shape(tables[0])[0]

    def block(tables, rows):
        bucket = _bucket(tf.maximum(rows, 1))
        return block_output(*[_padded(table, bucket) for table in tables], rows)[:rows]

    def blocks():
        num_blocks = (rows + BLOCK_ROWS - 1) // BLOCK_ROWS
        outputs = tf.TensorArray(
            tables[0].dtype,
            size=num_blocks,
            element_shape=(None, width),
            infer_shape=False,  # the last block is shorter
        )

        def body(index, outputs):
            start = index * BLOCK_ROWS
            rows_in_block = tf.minimum(rows - start, BLOCK_ROWS)
            part = [table[start : start + rows_in_block] for table in tables]
            return index + 1, outputs.write(index, block(part, rows_in_block))

        _, outputs = tf.while_loop(lambda index, _: index < num_blocks, body, (0, outputs))
        return outputs.concat()

    return tf.cond(rows <= BLOCK_ROWS, lambda: block(tables, rows), blocks)
