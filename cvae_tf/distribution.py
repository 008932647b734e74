"""tf.distribute: the strategy of a run, and what a model step needs to run under it."""

import json
import math
import os

import tensorflow as tf
from keras import ops

from cvae_tf.errors import UserInputError

STRATEGIES = ("none", "mirrored", "multi_worker")
WORKER_JOBS = ("chief", "worker")  # the jobs MultiWorkerMirroredStrategy trains with
TF_CONFIG_SHAPE = (
    '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `name` (one of STRATEGIES) stands for, on this machine's devices.

    "none" is TensorFlow's default strategy (one device). "mirrored" replicates the model on
    every logical GPU, or on every logical CPU device when there is no GPU (plain
    `MirroredStrategy()` would then use CPU:0 only). "multi_worker" is
    `MultiWorkerMirroredStrategy` over the cluster that `TF_CONFIG` describes.

    TensorFlow requires MultiWorkerMirroredStrategy to be created before its runtime starts: it
    configures the runtime for collective ops, and once any operation has run or any device has
    been listed, TensorFlow refuses ("Collective ops must be configured at program startup").
    So create the strategy first, before any TensorFlow work (data, model, device queries);
    importing TensorFlow and `keras.utils.set_random_seed` do not start the runtime. Logical
    device configuration (`tf.config.set_logical_device_configuration`) comes before it.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        # A clear message for a missing or bad TF_CONFIG, not a resolver traceback (or, without
        # TF_CONFIG, a silent single-worker run).
        if cluster_task() is None:
            raise _tf_config_error("is not set; --distribution=multi_worker needs it")
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:  # the runtime already started: a programming error
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before any other TensorFlow "
                f"operation runs: {error}"
            ) from error
    raise UserInputError(f"--distribution={name!r}; expected one of {', '.join(STRATEGIES)}")


def cluster_task(tf_config: str | None = None) -> tuple[dict[str, list[str]], str, int] | None:
    """(cluster, task type, task index) from TF_CONFIG (the environment's by default), or None.

    Raises UserInputError, in one line that shows the expected JSON, for a TF_CONFIG that is not
    JSON, lacks "cluster" or "task", names jobs other than chief and worker, or a task that is
    not in the cluster.
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    if not tf_config.strip():
        return None
    try:
        parsed = json.loads(tf_config)
    except json.JSONDecodeError as error:
        raise _tf_config_error(f"is not JSON ({error})") from None
    if not isinstance(parsed, dict) or not {"cluster", "task"} <= parsed.keys():
        raise _tf_config_error("needs both a 'cluster' and a 'task'")
    cluster, task = parsed["cluster"], parsed["task"]
    if not isinstance(cluster, dict) or not cluster:
        raise _tf_config_error(f"cluster={cluster!r}; expected job names mapped to address lists")
    for job, addresses in cluster.items():
        if job not in WORKER_JOBS:
            raise _tf_config_error(f"job {job!r}; MultiWorkerMirroredStrategy takes {WORKER_JOBS}")
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise _tf_config_error(f"cluster[{job!r}]={addresses!r}; expected ['host:port', ...]")
    if len(cluster.get("chief", [])) > 1:
        raise _tf_config_error(f"{len(cluster['chief'])} chiefs; a cluster has at most one")
    if not isinstance(task, dict) or not {"type", "index"} <= task.keys():
        raise _tf_config_error(f"task={task!r}; expected {{'type': 'worker', 'index': 0}}")
    task_type, index = task["type"], task["index"]
    if (
        task_type not in cluster
        or not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < len(cluster[task_type])
    ):
        raise _tf_config_error(f"task {task_type!r} {index!r} is not in the cluster {cluster}")
    return cluster, task_type, index


def _tf_config_error(problem: str) -> UserInputError:
    return UserInputError(f"TF_CONFIG {problem}; expected JSON like {TF_CONFIG_SHAPE}")


def is_chief(tf_config: str | None = None) -> bool:
    """Whether this process writes the run folder: the "chief" task, else worker 0.

    True without TF_CONFIG (a single-machine run). Only ask under multi_worker: a stray TF_CONFIG
    says nothing about a mirrored or single-device run.
    """
    task = cluster_task(tf_config)
    if task is None:
        return True
    cluster, task_type, index = task
    if "chief" in cluster:
        return task_type == "chief"
    return index == 0


def scaled_batch_and_learning_rate(
    batch_size: int, learning_rate: float, num_replicas: int, scale: bool
) -> tuple[int, float]:
    """The global batch (events per step, all replicas) and learning rate `Model.fit` gets.

    keras' `fit` under a strategy takes the global batch and gives each replica
    batch/num_replicas. By default both stay as given: a distributed run then makes the same
    updates as a single-device one, only faster. With `scale`, each replica keeps `batch_size`
    events (global batch batch_size × replicas) and the learning rate grows linearly with the
    replicas, the rule of Goyal et al. 2017 ("Accurate, large minibatch SGD") that TensorFlow's
    distributed-training guides follow.
    """
    if num_replicas < 1:
        raise ValueError(f"num_replicas={num_replicas}; expected ≥ 1")
    if scale:
        return batch_size * num_replicas, learning_rate * num_replicas
    if batch_size < num_replicas:
        raise UserInputError(
            f"--batch_size={batch_size} is smaller than the {num_replicas} replicas; expected at "
            "least one event per replica and step"
        )
    return batch_size, learning_rate


def compile_options(
    strategy: tf.distribute.Strategy, steps_per_execution: int, jit_compile: bool
) -> tuple[int, bool]:
    """(steps_per_execution, jit_compile) that keras 3.15's TensorFlow trainer can run.

    With more than one replica both fall back to 1 and False (one device keeps what it asked):
    - keras compiles its whole step, `strategy.run` included, with XLA: on two devices of one
      machine that fails ("Trying to access resource ... located in device CPU:1 from device
      CPU:0"), across workers XLA on CPU has no kernel for the collective ops
      ("CollectiveGatherV2"); keras' own `jit_compile="auto"` turns XLA off under tf.distribute;
    - `steps_per_execution > 1` runs each step inside a `tf.cond`, where the cross-replica
      synchronization of the optimizer fails with "You must feed a value for placeholder
      tensor" (keras-team/keras#19246, open), under both strategies.
    """
    if strategy.num_replicas_in_sync > 1:
        return 1, False
    return steps_per_execution, jit_compile


# What the model's steps need under a strategy with several replicas.


def replica_shared_weight(layer, shape, initializer: str, name: str):
    """A non-trainable weight of `layer` that every replica updates alike, kept from the first.

    Under tf.distribute it is a mirrored variable that every replica's step updates with the
    same values (the callers add up the replicas' batches first), kept from the first replica.
    Without an aggregation TensorFlow would silently update each replica's own copy only;
    "sum" would add up keras' assign_add, which is assign(variable + value), into
    variable × replicas + Σ values.
    """
    return layer.add_weight(
        shape=shape,
        initializer=initializer,
        trainable=False,
        aggregation="only_first_replica",
        name=name,
    )


def multi_replica_context():
    """The replica context of a step run by a tf.distribute strategy with several replicas."""
    replicas = tf.distribute.get_replica_context()
    if replicas is None or replicas.num_replicas_in_sync == 1:
        return None  # one device, or cross-replica code (callbacks, after fit)
    return replicas


def replica_rows(rows):
    """(replica context, the replica's first row in the global batch, the global batch's rows).

    For `rows` events on this replica under a multi-replica strategy; (None, None, None) else.
    The replicas' shares are taken to follow each other in replica order.
    """
    replicas = multi_replica_context()
    if replicas is None:
        return None, None, None
    counts = replicas.all_gather(tf.reshape(tf.cast(rows, tf.int32), (1,)), axis=0)
    earlier = tf.range(replicas.num_replicas_in_sync) < replicas.replica_id_in_sync_group
    return replicas, tf.reduce_sum(tf.where(earlier, counts, 0)), tf.reduce_sum(counts)


def batch_mean(global_batch_size):
    """The mean over a batch's elements, or a replica's share of it over the global batch."""
    if global_batch_size is None:
        return ops.mean

    def share(values):
        elements = global_batch_size * math.prod(values.shape[1:])
        return ops.sum(values) / ops.cast(elements, values.dtype)

    return share


def step_logs(logs):
    """A step's logs {name: scalar} in the shape keras can reduce under the current strategy.

    Across several workers keras 3.15 reduces each log with `strategy.reduce("MEAN", log,
    axis=0)`, which fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions", keras-team/keras#20585): there every log gets a leading axis of length 1, which
    that reduction removes again.
    """
    replicas = multi_replica_context()
    if replicas is None:
        return logs
    extended = replicas.strategy.extended
    if replicas.num_replicas_in_sync == len(extended.worker_devices):
        return logs  # one worker: keras stacks the replicas' scalars and averages them
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def build_without_a_batch(model) -> None:
    """What keras' `_maybe_symbolic_build` does under a strategy, for a model built at __init__.

    Under a strategy, keras 3.15's TensorFlow trainer reduces a whole input batch across
    replicas there only to trace shapes, and MultiWorkerMirroredStrategy cannot reduce a
    (momenta, positions) pair ("Attempt to convert a value (PerReplica...)",
    keras-team/keras#20585). A model built in __init__ and compiled without keras losses or
    metrics needs no batch: what is left is the optimizer's variables, made in the strategy's
    scope.
    """
    with model.distribute_strategy.scope():
        model._symbolic_build()
