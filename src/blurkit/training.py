"""The training loop behind :meth:`blurkit.Deblurrer.fit`: one loop for every ``tf.distribute`` strategy.

Why not ``keras.Model.fit``: it works on one device and under ``MirroredStrategy``, but fails under
``MultiWorkerMirroredStrategy`` in Keras 3 ("Attempt to convert a value (PerReplica...) to a Tensor",
keras-team/keras issue 20585). A custom step works with every strategy, so blurkit runs all training,
distributed or not, through this one loop (TensorFlow's documented custom-training pattern):

* the model and its Keras optimizer are created inside ``strategy.scope()`` (variables are mirrored);
* the data comes from ``strategy.distribute_datasets_from_function``: one input pipeline per worker,
  sharded by file, batched per replica (global batch / replicas in sync);
* a ``tf.function`` calls ``strategy.run`` on the replica step: a ``GradientTape`` over the model, the
  per-image loss summed and divided by the **global** batch size (``tf.nn.compute_average_loss``), and
  the Keras optimizer's ``apply_gradients``, which sums the gradients over all replicas (all-reduce);
  the per-replica sums of loss, PSNR and SSIM are reduced with ``ReduceOp.SUM``, so every worker logs
  the same numbers;
* Keras callbacks run as in ``fit`` (``CallbackList``: ``on_train_begin``, ``on_epoch_begin``,
  ``on_train_batch_begin/end``, ``on_epoch_end`` with ``val_`` logs, ``model.stop_training``), so
  ``ReduceLROnPlateau``, ``EarlyStopping``, ``LearningRateScheduler``, blurkit's checkpoint and
  training-state callbacks and the returned ``History`` behave as with ``Model.fit``;
* validation runs on each worker over the whole validation set (small by design) with the same
  weights, so every worker sees the same ``val_`` logs and takes the same early-stopping and
  learning-rate decisions; a stop asked by any worker's callback (a time limit measured on that
  worker's clock, say) is agreed by all with an all-reduce at the end of the epoch, so workers
  never wait for each other in a collective that one of them left.

With ``verbose=2`` (one line per epoch: what ``blurkit train`` prints in a log file, a pipe or a CI job) an
epoch of thousands of steps was hours without a line, and CI services stop a job that is silent for ten
minutes: a plain line (the epoch, the step, the time and the running loss) is printed during an epoch at most
every :data:`blurkit._progress.LOG_INTERVAL` seconds, as the other commands' progress in a log; a run whose
epochs are shorter prints the epoch lines only, as Keras does.

With the default strategy (no distribution) the same code runs on one device: ``strategy.run`` calls
the step directly and the all-reduce is the identity.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["is_chief", "make_strategy", "worker_temp_dir", "broadcast_weights", "step_functions", "train"]


def make_strategy(name: str | None):
    """A ``tf.distribute.Strategy`` by name: ``"mirrored"``, ``"multiworker"``, or None (default strategy).

    ``"multiworker"`` reads the cluster from the ``TF_CONFIG`` environment variable. Create it at the
    start of the program, before any other TensorFlow work (TensorFlow's rule for collective ops).

    Examples:
        >>> make_strategy(None).num_replicas_in_sync
        1
    """
    import tensorflow as tf

    if name in (None, "", "none", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("multiworker training needs the cluster in the TF_CONFIG environment variable, as "
                             "TensorFlow reads it: JSON with every worker's address and this process's place, e.g. "
                             '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                             '"index": 0}} (docs/distributed.md in blurkit\'s source)')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}: use 'mirrored' or 'multiworker'")


def is_chief(strategy: Any = None) -> bool:
    """Whether this process is the chief: it alone writes checkpoints, models and figures.

    Per TensorFlow's convention: no cluster (single process), the task of type ``chief``, or worker 0
    when the cluster has no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)  # None for single-process strategies
    if resolver is None:
        return True
    task_type, task_id = getattr(resolver, "task_type", None), getattr(resolver, "task_id", None)
    if task_type is None or task_type == "chief":
        return True
    if task_type == "worker" and (task_id or 0) == 0:
        spec = resolver.cluster_spec().as_dict() if hasattr(resolver, "cluster_spec") else {}
        return "chief" not in spec
    return False


def worker_temp_dir(prefix: str = "blurkit-worker-") -> str:
    """A private temporary folder where a non-chief worker writes its (discarded) checkpoints."""
    return tempfile.mkdtemp(prefix=prefix)


def in_multi_worker_mode(strategy: Any) -> bool:
    """Whether ``strategy`` spans several worker processes."""
    return bool(getattr(getattr(strategy, "extended", None), "_in_multi_worker_mode", lambda: False)())


def broadcast_weights(model: Any, strategy: Any) -> None:
    """Give every worker the chief's weights (replica 0's), with one SUM all-reduce.

    ``MultiWorkerMirroredStrategy`` broadcasts a variable's *initial* value from worker 0 when it is
    created, but weights assigned afterwards (a model moved into the scope with ``set_weights``, each
    worker with its own random initialisation) differ between workers. Call on every worker.
    """
    import tensorflow as tf

    variables = [v for v in model.weights if v.dtype in ("float16", "bfloat16", "float32", "float64")]
    if not variables:
        return

    @tf.function
    def chief_values():
        def replica():
            ctx = tf.distribute.get_replica_context()
            keep = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.float32)
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                  [tf.cast(tf.convert_to_tensor(v.value), tf.float32) * keep for v in variables])

        return strategy.run(replica)

    for v, value in zip(variables, chief_values(), strict=True):
        v.assign(tf.cast(strategy.experimental_local_results(value)[0], v.dtype))


def _clock(seconds: float) -> str:
    """A duration as ``M:SS``, or ``H:MM:SS`` from an hour.

    Examples:
        >>> _clock(5.4), _clock(754), _clock(3 * 3600 + 61)
        ('0:05', '12:34', '3:01:01')
    """
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _step_line(epoch: int, epochs: int, step: int, steps: int, elapsed: float, loss: float | None) -> str:
    """The line :func:`_log_steps` prints after ``step`` steps (counted from 1) of epoch ``epoch`` (from 1),
    ``elapsed`` seconds into the epoch: the time left in the epoch at the pace so far, the running loss as
    Keras' epoch line writes it.

    Examples:
        >>> _step_line(1, 3, 120, 2500, 31.2, 0.0123456)
        'epoch 1/3, step 120/2500: 0:31, about 10:18 left in the epoch, loss: 0.0123'
        >>> _step_line(2, 2, 3, 3, 4, 2e-4)
        'epoch 2/2, step 3/3: 0:04, loss: 2.0000e-04'
    """
    line = f"epoch {epoch}/{epochs}, step {step}/{steps}: {_clock(elapsed)}"
    if step < steps:
        line += f", about {_clock(elapsed / step * (steps - step))} left in the epoch"
    if loss is not None:
        line += f", loss: {loss:.4f}" if abs(loss) > 1e-3 else f", loss: {loss:.4e}"  # Keras' Progbar's format
    return line


def _log_steps() -> Any:
    """A Keras callback for logs (``verbose=2``): during an epoch, a :func:`_step_line` on stdout (where Keras
    prints the epoch lines), flushed, at most every :data:`blurkit._progress.LOG_INTERVAL` seconds (a
    monotonic clock, from the start of the epoch), so a long epoch is not silent; none in an epoch shorter
    than that."""
    import keras

    from blurkit import _progress

    class LogSteps(keras.callbacks.Callback):
        epoch, start, last = 0, 0.0, 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.start = self.last = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            now = time.monotonic()
            if now - self.last < _progress.LOG_INTERVAL:
                return
            self.last = now
            loss = (logs or {}).get("loss")
            print(_step_line(self.epoch + 1, int(self.params.get("epochs") or 0), batch + 1,
                            int(self.params.get("steps") or 0), now - self.start,
                            None if loss is None else float(loss)), flush=True)

    return LogSteps()


def step_functions(model: Any, loss: Any, strategy: Any, global_batch: int):
    """``(train_step, eval_step)``: the compiled functions :func:`train` runs.

    ``train_step(iterator)`` takes the next per-replica batch of a distributed iterator, runs the replica
    step on every replica with ``strategy.run`` and returns the all-replica sums ``[loss, psnr, ssim,
    images]``; ``eval_step(x, y)`` returns the same sums for one local batch, without training.
    """
    import tensorflow as tf

    from blurkit.registry import METRICS

    psnr_fn, ssim_fn = METRICS.get("psnr").keras_fn, METRICS.get("ssim").keras_fn
    optimizer = model.optimizer
    jit = bool(getattr(model, "jit_compile", False))

    def sums(x, y, pred, per_image):
        n = tf.cast(tf.shape(x)[0], tf.float32)
        pred = tf.cast(pred, tf.float32)
        y = tf.cast(y, tf.float32)
        return tf.stack([tf.reduce_sum(tf.cast(per_image, tf.float32)), psnr_fn(y, pred) * n,
                         ssim_fn(y, pred) * n, n])

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            per_image = loss.call(y, pred)
            value = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
            if model.losses:
                value += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            # under a mixed-precision policy Keras' LossScaleOptimizer divides the gradients by its scale: they
            # must be of the scaled loss (those of the loss itself underflow in float16, and every layer but
            # the last stayed as it was); other optimizers return the loss as it is
            scaled = optimizer.scale_loss(value)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return sums(x, y, pred, per_image)

    step_fn = tf.function(replica_step, jit_compile=jit, reduce_retracing=True)

    @tf.function
    def train_step(iterator):
        x, y = next(iterator)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(step_fn, args=(x, y)), axis=None)

    @tf.function(reduce_retracing=True)
    def eval_step(x, y):
        pred = model(x, training=False)
        return sums(x, y, pred, loss.call(y, pred))

    return train_step, eval_step


def train(
    model: Any,
    loss: Any,
    dataset_fn: Callable[[Any], Any],
    *,
    strategy: Any,
    global_batch: int,
    steps: int,
    initial_epoch: int,
    epochs: int,
    validation: Any = None,
    callbacks: Sequence[Any] = (),
    verbose: int | str = "auto",
    cache: dict | None = None,
):
    """Train ``model`` (built and compiled inside ``strategy.scope()``) for epochs ``[initial_epoch, epochs)``.

    Args:
        model: A compiled Keras model whose variables and optimizer belong to ``strategy``.
        loss: A blurkit loss object (:func:`blurkit.metrics.losses.get_loss`): ``loss.call(y, p)`` gives
            one value per image.
        dataset_fn: ``dataset_fn(input_context) -> tf.data.Dataset`` of per-replica ``(blurred, sharp)``
            batches for this worker, covering every epoch in order (``steps`` steps each).
        strategy: The ``tf.distribute.Strategy`` (the default strategy for one device).
        global_batch: Images per step over all replicas (the loss is divided by it).
        steps: Steps per epoch.
        initial_epoch: First epoch index (resumed runs start later).
        epochs: Index after the last epoch.
        validation: A ``tf.data.Dataset`` of ``(blurred, sharp)`` batches, evaluated after every epoch
            on this worker, or None.
        callbacks: Keras callbacks.
        verbose: 0 (silent), 1 (progress bar), 2 (one line per epoch, and during a long epoch a
            :func:`_step_line` every :data:`blurkit._progress.LOG_INTERVAL` seconds at most: for logs) or
            ``"auto"`` (1); non-chief workers are always silent.
        cache: A dict the caller keeps between calls (a Deblurrer's), in which the compiled step functions
            are kept for the same model (and trainable variables), loss, optimizer, strategy and batch: a
            second ``train`` then traces nothing again (each trace took seconds, and the graphs of every
            earlier one stayed in memory, about 12 MiB a ``fit``).

    Returns:
        A ``keras.callbacks.History`` of the epochs run.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    # the functions hold these objects, so their ids stay theirs while the cache holds the functions; the
    # variables trained are read when a function is traced (a layer frozen since was still trained), and so are
    # the layers' added losses
    key = (id(model), type(loss), loss.get_config(), id(model.optimizer), id(strategy), global_batch,
           bool(getattr(model, "jit_compile", False)), tuple(id(v) for v in model.trainable_variables),
           len(model.losses))
    if cache is not None and cache.get("key") == key:
        train_step, eval_step, anyone = cache["functions"]
    else:
        train_step, eval_step = step_functions(model, loss, strategy, global_batch)

        @tf.function
        def anyone(flag):  # True on every worker if it is True on one (a SUM all-reduce)
            value = strategy.run(lambda f: tf.identity(f), args=(flag,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) > 0

        if cache is not None:
            cache.clear()  # the functions of another model, loss or optimizer, and their graphs, go
            cache.update(key=key, functions=(train_step, eval_step, anyone))

    def logs_of(total: np.ndarray, prefix: str = "") -> dict[str, float]:
        n = max(float(total[3]), 1.0)
        return {f"{prefix}loss": total[0] / n, f"{prefix}psnr": total[1] / n, f"{prefix}ssim": total[2] / n}

    chief = is_chief(strategy)
    multi_worker = in_multi_worker_mode(strategy)
    verbose = 1 if verbose == "auto" else int(verbose)
    if not chief:
        verbose = 0
    history = keras.callbacks.History()
    logged = [_log_steps()] if verbose == 2 else []
    cbs = keras.callbacks.CallbackList([*callbacks, history, *logged], add_history=False, add_progbar=verbose != 0,
                                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    data = strategy.distribute_datasets_from_function(dataset_fn)
    iterator = iter(data)
    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        total = np.zeros(4)
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            total += train_step(iterator).numpy()
            logs = logs_of(total)
            cbs.on_train_batch_end(step, logs)
            if model.stop_training and not multi_worker:
                break
        epoch_logs = dict(logs)
        if validation is not None:
            vtotal = np.zeros(4)
            for x, y in validation:
                vtotal += eval_step(x, y).numpy()
            epoch_logs.update(logs_of(vtotal, "val_"))
        cbs.on_epoch_end(epoch, epoch_logs)
        if multi_worker:  # a worker's callback (e.g. a time limit) stops every worker at the same epoch
            model.stop_training = bool(anyone(tf.constant(float(bool(model.stop_training)))))
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return history
