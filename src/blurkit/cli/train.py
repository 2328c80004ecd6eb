"""``blurkit train``: train a deblurring model on a folder of sharp photos or on existing pairs."""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blurkit._lock import Busy, Lock, beside
from blurkit.cli._common import add_max_pixels, add_threads, count, file_id
from blurkit.metrics.losses import LOSSES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a deblurring model",
        description="Train a model on sharp photos (blurred on the fly) or on blurred/sharp pairs, "
        "save it (a .keras file: the epoch with the best validation loss; without validation the last epoch, "
        "or with --early-stopping the one with the best training loss) and the training curves (a PNG "
        "beside it). The training state "
        "is saved after every epoch (OUT's name with .resume, e.g. model.resume/last.keras) and removed "
        "when the run completes: after a crash, run the same command with --resume to continue.",
    )
    p.add_argument("data", nargs="?", help="sharp photos: a folder, file, glob, .txt list of paths, or TFRecord "
                   "shards (a folder written by `blurkit shard`)")
    p.add_argument("--pairs", nargs=2, metavar=("BLURRED_DIR", "SHARP_DIR"), help="train on existing pairs")
    p.add_argument("--validation", help="separate validation photos (default: a seeded split of DATA)")
    p.add_argument("--val-split", type=float,
                   help="fraction of DATA held out for validation when there is no --validation (0.1)")
    p.add_argument("--model", help="model builder (see `blurkit list models`; default unet)")
    p.add_argument("--init", metavar="MODEL",
                   help="fine-tune this model instead of building a new one: a .keras file or a preset's name "
                        "(gaussian-v1); its architecture, blur, loss, learning rate, patch, batch and tile sizes "
                        "and patches per image are the defaults; --sigma and --blur-option change its own blur, "
                        "--blur NAME starts from that blur's defaults")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="builder option, repeatable")
    p.add_argument("--blur", help="blur generator (default gaussian; with --init the model's own)")
    p.add_argument("--sigma", help="gaussian sigma: a number (2) or a range (0.5:3); default 0.3:3.5 (with "
                   "--init the model's own)")
    p.add_argument("--blur-option", action="append", metavar="KEY=VALUE",
                   help="blur option, repeatable: quantize=true rounds the inputs to 8 bits as photo files are "
                        "(the presets' recipe; off by default), noise=0:0.02, jpeg=50:95")
    p.add_argument("--epochs", type=int, default=10, help="default 10")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: each image once)")
    p.add_argument("--batch-size", type=int, help="patches per step (default 16; with --init the model's own)")
    p.add_argument("--patch-size", type=int,
                   help="side of the square training patches in px (default 96; with --init the model's own); a "
                        "fixed-size model (the autoencoder) trains at its own input size")
    p.add_argument("--patches-per-image", type=int, help="random patches cut from each photo per "
                   "epoch (default 4; with --init the model's own)")
    p.add_argument("--lr", type=float, help="initial learning rate (Adam; default 0.001; with --init the model's own)")
    p.add_argument("--loss", choices=LOSSES,
                   help="training loss (default mse; with --init the model's own; psnr_loss: -PSNR per image, "
                        "weighs mild and strong blur alike)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE flat epochs")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop at the end of the first epoch that ends after MINUTES of training (a job's wall "
                   "time): the training state is kept, and the same command with --resume goes on")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the initial weights, the validation split and the training patches and blurs "
                   "(default 0): the same command on the same photos trains the same model (bit for bit on the "
                   "same machine, thread count and versions: docs/data.md). The validation patches and blurs "
                   "have a fixed seed: runs with different seeds are validated on the same inputs")
    p.add_argument("--deterministic", action="store_true",
                   help="make TensorFlow's operations deterministic (tf.config.experimental."
                   "enable_op_determinism): on a GPU the same command then trains the same weights, more slowly; "
                   "on a CPU runs are repeatable without it, with the same thread count")
    p.add_argument("--channels", type=int, choices=[1, 3],
                   help="3 (RGB, default; or what a --model without a channels option builds) or 1 (grey)")
    p.add_argument("--out", "-o", default="model.keras", help="model file to write (default model.keras)")
    p.add_argument("--curves", help="training-curves PNG (default: OUT with .png)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose per-epoch state is in --checkpoint-dir (e.g. after a crash); "
                   "starts afresh when there is none")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT and the training state of an earlier run (without it, train refuses to: "
                   "--resume continues that run)")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where the training state is saved after every epoch (default: OUT's name with "
                   ".resume, e.g. model.resume/)")
    p.add_argument("--distribute", choices=["mirrored", "multiworker"],
                   help="train with tf.distribute: 'mirrored' uses every local GPU (or CPU), 'multiworker' the "
                   "cluster in TF_CONFIG (run the same command on every worker); --batch-size is the global "
                   "batch; only the chief writes OUT (docs/distributed.md in blurkit's source)")
    add_max_pixels(p, "skip")
    add_threads(p)
    p.add_argument("--cache", metavar="DIR", help="cache the decoded training images in DIR (for slow storage, "
                   "and for camera-size photos: each is decoded once, not for every few patches)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but errors and warnings: no progress, no summary")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from blurkit.cli._common import check_output, parse_blur_options
    from blurkit.cli.main import CLIError

    if bool(args.data) == bool(args.pairs):
        raise CLIError("give either DATA (sharp photos) or --pairs BLURRED_DIR SHARP_DIR")
    for path in [args.data] if args.data else args.pairs:
        if not any(c in path for c in "*?[") and not Path(path).exists():
            raise CLIError(f"no such file or folder: {path}")
    from blurkit.presets import list_presets, preset_path
    from blurkit.registry import MODELS

    if args.model in list_presets() and args.model not in MODELS.list():
        from blurkit.deblurrer import Deblurrer

        builder = (Deblurrer.read_metadata(preset_path(args.model)).get("model") or {}).get("name")
        raise CLIError(f"--model {args.model} is a shipped preset, not a model builder: train builds a new model "
                       f"(`blurkit list models`; {args.model}'s architecture is {builder}). To train the preset "
                       f"further: --init {args.model}")
    if args.init:  # the architecture is the model's
        given = [flag for flag, value in (("--model", args.model), ("--model-option", args.model_option),
                                          ("--channels", args.channels)) if value is not None]
        if given:
            verb = "builds" if len(given) == 1 else "build"
            raise CLIError(f"{' and '.join(given)} {verb} a new model; --init {args.init} trains that model's "
                           "architecture further: drop one or the other")
    out = Path(args.out)
    if out.suffix != ".keras":
        raise CLIError(f"--out must end in .keras, got {out}")
    check_output(out, "--out", stream=False)
    if args.curves:
        check_output(args.curves, "--curves")
        from blurkit.cli.evaluate import FIGURE_SUFFIXES

        if Path(args.curves).suffix.lower() not in FIGURE_SUFFIXES:
            raise CLIError(f"--curves {args.curves}: write a {', '.join(FIGURE_SUFFIXES)} file")
    curves = Path(args.curves) if args.curves else out.with_suffix(".png")
    for folder in [args.data, args.validation] if args.data else [*args.pairs, args.validation]:
        # a figure written among the photos replaced one of the same name, and the next run trained on it
        if folder and Path(folder).is_dir() and curves.resolve().is_relative_to(Path(folder).resolve()):
            flag = "--curves" if args.curves else "the training curves (OUT with .png)"
            raise CLIError(f"{flag} {curves} would be written among the photos in {folder} (and read as one "
                           "next time): write OUT or --curves elsewhere")
    if args.checkpoint_dir:
        check_output(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    if args.cache:
        check_output(args.cache, "--cache", folder=True)
    for name, value, least in (("--epochs", args.epochs, 1), ("--steps-per-epoch", args.steps_per_epoch, 1),
                               ("--batch-size", args.batch_size, 1), ("--patches-per-image", args.patches_per_image, 1),
                               ("--early-stopping", args.early_stopping, 1), ("--max-pixels", args.max_pixels, 1)):
        if value is not None and value < least:
            raise CLIError(f"{name} must be at least {least}, got {value}")
    if args.val_split is not None and args.validation:  # one was not what the user thinks it is
        raise CLIError(f"--val-split {args.val_split} holds out part of DATA when there is no --validation: with "
                       f"--validation {args.validation} it would be ignored; drop one of them")
    if args.val_split is None:
        args.val_split = 0.1
    if not 0 <= args.val_split < 1:
        raise CLIError(f"--val-split must be in [0, 1) (a fraction of DATA held out), got {args.val_split}")
    for name, value in (("--lr", args.lr), ("--time-limit", args.time_limit)):
        if value is not None and not 0 < value < math.inf:
            raise CLIError(f"{name} must be a positive number, got {value}")
    blur_options = parse_blur_options(args)
    if args.pairs and (blur_options or args.blur is not None):
        raise CLIError("--blur, --blur-option and --sigma make the blurred side of sharp photos; with --pairs the "
                       "blurred photos are given (made by `blurkit make-pairs` with its own blur options)")
    state_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out.with_name(out.stem + ".resume")
    with contextlib.ExitStack() as held:
        if _writes_out(args):  # before the files on disk are looked at: another run's are not an earlier run's
            for target, flag in ((out, "--out"), (state_dir, "--checkpoint-dir")):
                try:
                    held.enter_context(Lock(beside(target), target, "blurkit train"))
                except Busy as exc:
                    raise CLIError(f"{exc}: wait for it to end, or give another {flag}", status=1) from None
                except OSError as exc:
                    # a writable --checkpoint-dir in a folder this user cannot write (its lock file goes beside
                    # it): trained without that lock, as before locks (OUT's, in the folder OUT is written to,
                    # still keeps a second run of this command out); OUT's own folder must be writable anyway
                    if target is out or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                        raise
        return _train(args, out, state_dir, curves, blur_options)


def _writes_out(args: argparse.Namespace) -> bool:
    """Whether this process writes OUT and the training state, and so locks them: every run but a non-chief
    worker of ``--distribute multiworker`` (the same command runs on every worker, often with OUT on storage
    they share: only the chief writes it). The chief is told from ``TF_CONFIG``, as :func:`blurkit.training.
    is_chief` tells it once TensorFlow has read it: the task ``chief``, or worker 0 when the cluster has none."""
    import json

    if args.distribute != "multiworker":
        return True
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, cluster = config.get("task") or {}, config.get("cluster") or {}
        kind, index = task.get("type"), int(task.get("index") or 0)
    except (AttributeError, TypeError, ValueError):  # make_strategy says what is wrong with it
        return True
    return kind in (None, "chief") or (kind == "worker" and index == 0 and "chief" not in cluster)


def _train(args: argparse.Namespace, out: Path, state_dir: Path, curves: Path, blur_options: dict) -> int:
    """:func:`run` once the arguments are checked and OUT and the training state are locked."""
    from blurkit.cli._common import error_text, on_terminal, parse_options, plain_text, quiet_tensorflow
    from blurkit.cli.main import CLIError, interrupt_status

    first_epoch = False  # OUT is the epoch 1 of this command's run, stopped while saving its first state
    if args.resume and not (state_dir / "last.keras").is_file() and out.is_file():
        first_epoch, differences = _first_epoch_checkpoint(args, out, state_dir, blur_options)
        if differences:
            raise CLIError(f"--resume: no saved training state in {state_dir}, and {out} exists, saved by a run "
                           f"with other settings ({', '.join(differences)}): drop --resume and add --overwrite "
                           "to train afresh and replace it, or write another --out")
        if not first_epoch:
            raise CLIError(f"--resume: no saved training state in {state_dir}, and {out} exists (a run that "
                           f"finished?): drop --resume and add --overwrite to train afresh and replace it, or "
                           f"train it further with --init {out} -o NEW.keras")
    if args.resume and not args.init and (state_dir / "last.keras").is_file():
        from blurkit.deblurrer import Deblurrer, ModelFileError

        try:
            init = (Deblurrer.read_metadata(state_dir / "last.keras").get("training") or {}).get("init")
        except ModelFileError:  # fit says what is wrong with it
            init = None
        if isinstance(init, dict) and (init.get("preset") or init.get("file")):
            raise CLIError(f"the run in {state_dir} was started with --init {init.get('preset') or init['file']}: "
                           "give it again to resume that run")
    if not args.resume and not args.overwrite:  # hours of training are not replaced by a forgotten flag
        if (state_dir / "last.keras").is_file():
            raise CLIError(f"{state_dir / 'last.keras'} holds the training state of an earlier run: add --resume "
                           "to continue it, or --overwrite to start afresh and replace it")
        if out.exists():
            raise CLIError(f"--out {out} exists: add --overwrite to replace it, or write another --out")

    quiet_tensorflow()
    if args.deterministic:  # before any TensorFlow work, as the other settings of its runtime
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    strategy, chief = None, True
    if args.distribute:  # first, before any other TensorFlow work (a rule of collective ops)
        from blurkit.training import is_chief, make_strategy

        try:
            strategy = make_strategy(args.distribute)
        except ValueError as exc:
            raise CLIError(f"--distribute {args.distribute}: {exc}") from None
        chief = is_chief(strategy)

    from blurkit.deblurrer import Deblurrer, TrainingDivergedError

    model_options = parse_options(args.model_option, "--model-option")
    try:
        d = _fine_tuned(args, blur_options) if args.init else Deblurrer(
            model=args.model or "unet",
            blur=_pairs_blur(args.pairs[0]) or "gaussian" if args.pairs else args.blur or "gaussian",
            model_options=model_options,
            blur_options=blur_options, channels=args.channels, seed=args.seed, **_given(args),
        )
    except Exception as exc:  # noqa: BLE001 - a plugin's builder may refuse an option value with any exception
        if isinstance(exc, CLIError) or (args.init and not isinstance(exc, (KeyError, TypeError, ValueError))):
            raise
        what = f"--init {args.init}" if args.init else f"--model {args.model or 'unet'}"
        if model_options:
            what += f" with options {model_options}"
        what += f", --blur {args.blur or ('its own' if args.init else 'gaussian')}"
        if blur_options:
            what += f" with options {blur_options}"
        # a file the builder could not read (its weights, say) is the run's failure (1), not a usage error (2)
        raise CLIError(f"{' '.join(error_text(exc).splitlines())} ({what})",
                       status=1 if isinstance(exc, OSError) else 2) from None
    data = tuple(args.pairs) if args.pairs else args.data
    quiet = args.quiet or not chief
    if not quiet:
        shown_data = f"the pairs in {args.pairs[0]} and {args.pairs[1]}" if args.pairs else data
        print(f"{d}\ntraining on {shown_data} for {count(args.epochs, 'epoch')} -> {out} "
              f"(training state: {state_dir})")
        if args.resume:
            state = state_dir / "last.keras"
            if state.is_file():
                print(f"resuming from {state}")
            elif first_epoch:
                print(f"no saved state in {state_dir}: the run stopped while saving its first one, and {out} is "
                      "its epoch 1: starting afresh (replacing it)")
            else:
                print(f"no saved state in {state_dir}: starting afresh")
    started = time.time()
    # an OUT that fit replaces (atomically: a new file) is this run's checkpoint; not told by its time, as a
    # file server's clock may be behind this machine's
    before = file_id(out)

    def first() -> bool:  # after a stop: whether the same command with --resume starts afresh over OUT
        return _first_epoch_checkpoint(args, out, state_dir, blur_options)[0]

    try:
        d.fit(data, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, validation=args.validation,
              validation_split=args.val_split, early_stopping=args.early_stopping, checkpoint=out,
              callbacks=[] if quiet else [_announce(lambda: _split_line(d, args))],
              # a progress bar in a terminal; in a log file one line per epoch (a bar redraws itself with
              # carriage returns and colour codes: about 5 kB a second of training), and in a terminal that
              # asks for plain text (NO_COLOR, TERM=dumb: Emacs' shell, a screen reader reading each redraw)
              # (2 also prints a line every 30 s of a long epoch: blurkit.training._log_steps)
              verbose=0 if quiet else ("auto" if on_terminal(sys.stdout) and not plain_text() else 2),
              resume=args.resume,
              checkpoint_dir=state_dir,
              time_limit=args.time_limit, strategy=strategy, cache=args.cache,
              max_pixels=args.max_pixels)
    except TrainingDivergedError as exc:  # what the run leaves is worth knowing, as after Ctrl-C
        kept = f"{out} holds the best epoch before it" if _written(out, started) else "no model was saved"
        print(f"blurkit train: error: {exc}; {kept}", file=sys.stderr)
        if not quiet and _plot(d, curves):  # the curves up to the diverged epoch show how it went
            print(f"curves: {curves}")
        return 1
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:  # a full disk writing the model or the training state (the error names the file)
        print(f"blurkit train: error: {exc}; {'; '.join(_kept(state_dir, out, started, first))}", file=sys.stderr)
        return 1
    except Exception as exc:  # out of memory: NumPy's MemoryError, TensorFlow's ResourceExhaustedError
        if not isinstance(exc, MemoryError) and type(exc).__name__ != "ResourceExhaustedError":
            raise
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CLIError(f"out of memory while training ({cause}): lower --batch-size, --patch-size or "
                       "--patches-per-image") from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (see main): say what is kept and how to go on
        print(f"interrupted: {'; '.join(_kept(state_dir, out, started, first))}", file=sys.stderr)
        return interrupt_status(exc)
    if not chief:  # the chief writes the model, the curves, and removes the training state
        return 0
    try:
        return _finish(d, args, out, state_dir, curves, before, quiet)
    except OSError as exc:  # the epochs are trained: only writing OUT and the curves is left
        print(f"blurkit train: error: {exc}; {_kept_after_fit(d, args, state_dir, out)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"interrupted: {_kept_after_fit(d, args, state_dir, out)}", file=sys.stderr)
        return interrupt_status(exc)


def _finish(d: Any, args: argparse.Namespace, out: Path, state_dir: Path, curves: Path, before: Any,
            quiet: bool) -> int:
    """After ``fit``: write OUT (the best epoch, with the whole run's numbers) and the curves, and remove the
    training state of a complete run."""
    resumed = d.training.get("resumed_at_epoch") is not None  # OUT may be the best epoch of the run before
    written = out.is_file() and file_id(out) != before
    if not d.validation or not (out.is_file() if resumed else written) or not _whole_history(d, out):
        # no validation (the checkpoint followed the training loss), no finite validation loss (no checkpoint
        # was written), or an OUT there that is not this run's (an earlier run's, which --overwrite
        # replaces): the last state; a finished run's model says which epoch it is, as the others do (a
        # checkpoint of a run still training does not: _first_epoch_checkpoint)
        if not d.training.get("time_limit_reached"):
            d.training.setdefault("weights_epoch", len(d.history.get("loss", [])))
        d.save(out)
    plotted = _plot(d, curves)  # the model is saved: a figure that fails costs the figure, not the run
    paused = bool(d.training.get("time_limit_reached"))
    if not paused:  # the run is complete and its model saved: its training state is no longer needed
        (state_dir / "last.keras").unlink(missing_ok=True)
        _remove_state_temps(state_dir)  # what a state write killed mid-way left (kill -9, a power cut)
        try:
            state_dir.rmdir()
        except OSError:  # not empty (other files there) or already gone
            pass
    elif not quiet:
        print(f"--time-limit reached after epoch {d.training['epochs']} of {args.epochs}: run the same command "
              f"with --resume to go on (training state kept in {state_dir})")
    if not quiet:
        print(_summary(d, out, args.epochs, args.early_stopping, paused))
        if plotted:
            print(f"curves: {curves}")
    return 0


def _plot(d: Any, curves: Path) -> bool:
    """Write the training curves; on failure (a full disk, say) a warning on stderr and False."""
    try:
        d.plot_history(curves)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"blurkit train: warning: the training curves were not written to {curves}: {exc}", file=sys.stderr)
        return False
    return True


def _fine_tuned(args: argparse.Namespace, blur_options: dict) -> Any:
    """The Deblurrer ``--init`` asks for: the model (a file or a preset) with its weights, and its settings
    where no flag gives one; its blur with ``--blur-option`` / ``--sigma`` set, another with ``--blur``, the
    pairs' own with ``--pairs``. Its history is not carried on: this run's curves and epochs are its own (the
    training record names the file it started from)."""
    from blurkit.cli._common import load_named
    from blurkit.deblurrer import Deblurrer

    base = load_named(args.init)
    if not args.pairs and args.blur is None:
        from blurkit.deblurrer import _check_blur_installed

        _check_blur_installed(base.blur, "train")  # a plugin's not installed here: its options cannot be set
    if args.pairs:
        blur = _pairs_blur(args.pairs[0]) or base.blur
    else:
        blur = base._eval_blur(args.blur, blur_options or None)
    own = {"loss": base.loss, "learning_rate": base.learning_rate, "patch_size": base.patch_size,
           "batch_size": base.batch_size, "patches_per_image": base.patches_per_image}
    d = Deblurrer(model=base.model, blur=blur, tile_size=base.tile_size, tile_overlap=base.tile_overlap,
                  estimate_tile=base.estimate_tile, seed=args.seed, **{**own, **_given(args)})
    d.model_spec, d._saved_components, d.source = base.model_spec, base._saved_components, base.source
    d._loaded = base._loaded
    return d


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings a flag gave (0 included: the checks refuse it by name), as Deblurrer's arguments:
    the others are the Deblurrer's defaults for a new model, the model's own with ``--init``."""
    flags = {"loss": args.loss, "learning_rate": args.lr, "patch_size": args.patch_size,
             "batch_size": args.batch_size, "patches_per_image": args.patches_per_image}
    return {name: value for name, value in flags.items() if value is not None}


def _whole_history(d: Any, out: Path) -> bool:
    """Give the best epoch's checkpoint at ``out`` the numbers of the whole run (``training["run_history"]``,
    every epoch's; they were otherwise only in the PNG) and the epochs run, beside its own history, which
    ends at its epoch (``training["weights_epoch"]``), as a later ``fit(checkpoint=out)`` reads it to know
    the loss to beat. False, and the file left as it is, when its history is not the start of this run's
    (a file this run did not write)."""

    from blurkit.deblurrer import Deblurrer

    best = Deblurrer.load(out)
    kept = len(best.history.get("loss", []))
    start = _as_saved({k: v[:kept] for k, v in d.history.items()})
    if not kept or _as_saved(best.history) != start:
        return False
    run = len(d.history.get("loss", []))
    if run == kept and best.training.get("weights_epoch") == kept:
        return True  # the last epoch was the best: the file's history is the run's
    best.training = {**d.training, "weights_epoch": kept, "run_history": d.history}
    best.save(out)
    return True


def _remove_state_temps(state_dir: Path) -> None:
    """Delete the temporary files of training-state writes (``.last.XXXXXXXX.tmp.keras``) in ``state_dir``:
    the run they belonged to is complete, so none is a write in progress."""
    try:
        names = [n for n in os.listdir(state_dir) if _state_temp(n)]
    except OSError:
        return
    for name in names:
        try:
            (state_dir / name).unlink()
        except OSError:
            pass


def _written(path: Path, started: float) -> bool:
    """Whether the run that started at ``started`` wrote ``path`` (not a file an earlier run left; 2 s: FAT's
    modification times)."""
    return path.is_file() and path.stat().st_mtime >= started - 2


def _kept(state_dir: Path, out: Path, started: float, first_epoch: Callable[[], bool] = lambda: False
          ) -> list[str]:
    """What a run stopped before its end (Ctrl-C, SIGTERM, a full disk) leaves to go on from; ``first_epoch``
    tells whether the same command with --resume takes OUT for this run's epoch 1 and starts afresh
    (:func:`_first_epoch_checkpoint`)."""
    state = state_dir / "last.keras"
    if _written(state, started):
        kept = [f"the training state after the last finished epoch is in {state_dir}: run the same command with "
                "--resume to go on"]
    elif state.is_file():  # this run was to replace it, but finished no epoch: the earlier run's is intact
        kept = [f"no epoch of this run finished; {state_dir} still holds an earlier run's training state "
                "(--resume goes on from it)"]
    elif _written(out, started):  # OUT is written before the state at the end of an epoch: epoch 1's
        again = "the same command with --resume starts the run afresh" if first_epoch() else \
            "add --overwrite to start the run afresh"
        return [f"the run stopped while saving its first training state: {out} holds epoch 1 (the run is not "
                f"finished), and {again}"]
    else:
        kept = ["no epoch finished, so there is nothing to resume"]
    if _written(out, started):
        kept.append(f"{out} holds the best model so far (the run is not finished)")
    return kept


def _first_epoch_checkpoint(args: argparse.Namespace, out: Path, state_dir: Path, blur_options: dict
                            ) -> tuple[bool, list[str]]:
    """Whether OUT, with no training state in ``state_dir``, is the checkpoint of epoch 1 of a run of this
    command that stopped (a kill, Ctrl-C, a full disk) while it saved its first training state: the best-model
    checkpoint is written before the state at the end of every epoch. Then --resume starts afresh, replacing
    it, as that run would have. Also the settings OUT records that differ from this command's (``--seed (saved
    3, now 0)``), for a file that is not a finished run's model (those record the whole run, below).

    Read from OUT's metadata (no TensorFlow): its training record says one epoch was trained, and not that it is
    a finished run's model (``weights_epoch`` and ``run_history``: :func:`_whole_history`; ``weights_epoch``
    with early stopping), a resumed run's or a paused one's; this command asks for more epochs; and the
    settings compared (the seed, the data's and validation's names, the split, early stopping, the model and
    blur, the settings a flag gives) are this command's. A checkpoint written while its run trained says so
    (``running``); a file of an earlier release does not, and without validation or early stopping a finished
    1-epoch run's model of one recorded the same as a checkpoint: for those the state folder must be there (a
    finished run removes it) and hold nothing but what a state write killed mid-way left."""
    from blurkit.deblurrer import Deblurrer, ModelFileError

    try:
        meta = Deblurrer.read_metadata(out)
    except (ModelFileError, OSError):  # the refusal names OUT
        return False, []
    training, history = _dict(meta.get("training")), _dict(meta.get("history"))
    if not isinstance(training.get("epochs"), int) or "weights_epoch" in training or "run_history" in training:
        return False, []  # not a checkpoint saved while a run trained (a finished run's model, or no run's)
    differences = [f"{flag} (saved {_shown(saved)}, now {_shown(now)})"
                   for flag, saved, now in _compared(meta, args, blur_options) if _as_saved(saved) != _as_saved(now)]
    losses = history.get("loss")
    first = (not differences and training.get("epochs") == 1 and isinstance(losses, list) and len(losses) == 1
             and args.epochs > 1 and training.get("resumed_at_epoch") is None
             and not training.get("time_limit_reached"))
    if first and training.get("running") is not True and not training.get("validation_items") \
            and not training.get("early_stopping"):
        # a checkpoint of a run still training says so ("running", since 2026-12-08), and a finished run's model
        # records its weights_epoch; an earlier release's 1-epoch model without validation recorded neither
        try:
            names = os.listdir(state_dir)
        except OSError:
            names = None
        first = names is not None and all(_state_temp(name) for name in names)
    return first, differences


_MISSING = "(not recorded)"


def _compared(meta: dict, args: argparse.Namespace, blur_options: dict) -> list[tuple[str, Any, Any]]:
    """``(flag, saved, now)`` for the settings of a model file's run that this command's flags tell without
    building anything: those a flag gives, and the seed, data, validation and early stopping, which always
    change the run."""
    training, model, blur = _dict(meta.get("training")), _dict(meta.get("model")), _dict(meta.get("blur"))
    data = list(args.pairs) if args.pairs else args.data
    compared: list[tuple[str, Any, Any]] = [
        ("--seed", training.get("seed", _MISSING), args.seed),
        ("--pairs" if args.pairs else "DATA", _name(training.get("data")), _name(data)),
        ("--validation", _name(training.get("validation")), _name(args.validation)),
        ("--val-split", training.get("validation_split", _MISSING), None if args.validation else args.val_split),
        ("--early-stopping", training.get("early_stopping", _MISSING), args.early_stopping or None),
    ]
    for flag, key, now in (("--steps-per-epoch", "steps_per_epoch", args.steps_per_epoch),
                           ("--batch-size", "batch_size", args.batch_size),
                           ("--patch-size", "patch_size", args.patch_size),
                           ("--patches-per-image", "patches_per_image", args.patches_per_image),
                           ("--lr", "learning_rate", args.lr), ("--loss", "loss", args.loss)):
        if now is not None:
            compared.append((flag, training.get(key, _MISSING), now))
    init = _dict(training.get("init"))
    compared.append(("--init", init.get("preset") or _name(init.get("file")), _name(args.init)))
    if not args.init:
        compared.append(("--model", model.get("name", _MISSING), args.model or "unet"))
        from blurkit.cli._common import parse_options

        for key, value in parse_options(args.model_option, "--model-option").items():
            compared.append((f"--model-option {key}", _dict(model.get("config")).get(key, _MISSING), value))
        if args.channels is not None:
            compared.append(("--channels", _dict(meta.get("facade")).get("channels", _MISSING), args.channels))
    if not args.pairs and (args.blur is not None or not args.init):
        compared.append(("--blur", blur.get("name", _MISSING), args.blur or "gaussian"))
    if not args.pairs:
        for key, value in blur_options.items():
            compared.append((f"--blur-option {key}", _dict(blur.get("config")).get(key, _MISSING), value))
    return compared


def _dict(value: Any) -> dict:
    """A record of a model file's metadata, or an empty one where the file holds something else."""
    return value if isinstance(value, dict) else {}


def _name(path: Any) -> Any:
    """A path's last part, as the run's records are compared (the data of a resumed run is too: however its
    folder's path is written); a list of paths (pairs) as a list of them."""
    if isinstance(path, list):
        return [_name(p) for p in path]
    return Path(os.path.abspath(path)).name if isinstance(path, str) else path


def _as_saved(value: Any) -> Any:
    """``value`` as a model file's JSON holds it (:func:`blurkit.deblurrer._jsonable`, then through JSON: a tuple
    as a list), to compare a flag with what a file records."""
    import json

    from blurkit.deblurrer import _jsonable

    return json.loads(json.dumps(_jsonable(value), default=str))


def _shown(value: Any) -> str:
    return "none" if value is None else value if isinstance(value, str) else str(_as_saved(value))


def _state_temp(name: str) -> bool:
    """Whether ``name`` is a temporary file of a training-state write (``.last.XXXXXXXX.tmp.keras``): what a
    write killed mid-way (kill -9, a power cut) leaves."""
    from blurkit.data.io import temp_pattern

    match = temp_pattern(".tmp.keras").fullmatch(name)
    return match is not None and match.group(1) == "last"


def _kept_after_fit(d: Any, args: argparse.Namespace, state_dir: Path, out: Path) -> str:
    """What a run stopped after its last epoch, while it wrote OUT and the curves, leaves: after a pause at
    ``--time-limit``, --resume also trains the epochs left."""
    if d.training.get("time_limit_reached"):
        done = f"training paused after epoch {d.training.get('epochs', '?')} of {args.epochs} (--time-limit)"
        if (state_dir / "last.keras").is_file():
            return (f"{done}, and {out} and the curves may not be written yet; the training state is in "
                    f"{state_dir}: run the same command with --resume to write them and train the epochs left")
        return f"{done} and {out} is saved"
    if (state_dir / "last.keras").is_file():
        return (f"the epochs were trained, but {out} and the curves may not be written yet; the training state "
                f"is in {state_dir}: run the same command with --resume to write them (no epoch is trained again)")
    return f"the epochs were trained and {out} is saved"


def _summary(d, out: Path, epochs: int, patience: int | None, paused: bool) -> str:
    """The closing lines: an early stop, and which epoch the saved model is with its validation scores (those
    saved with it: the last epoch's differ when an earlier one was better)."""
    from blurkit.deblurrer import Deblurrer

    trained = int(d.training.get("epochs", 0))  # a CLI run starts from no history (or resumes its own)
    lines = []
    monitored = "validation loss" if d.validation else "training loss"  # what early stopping watched
    if trained < epochs and not paused and patience:
        lines.append(f"stopped early after epoch {trained} of {epochs}: no better {monitored} for "
                     f"{count(patience, 'epoch')}")
    meta = Deblurrer.read_metadata(out)
    # the epoch of the weights: the last one in the file's history, unless early stopping put an earlier
    # (the best) epoch's weights back
    saved = (meta.get("training") or {}).get("weights_epoch") or len((meta.get("history") or {}).get("loss") or [])
    psnr = (meta.get("validation") or {}).get("psnr")
    # paused: of the run's epochs (the line before says it stopped at the time limit)
    which = f"epoch {saved} of {epochs if paused else trained}" + (f", the best {monitored}" if saved < trained else "")
    lines.append(f"saved {out}: {which}" + (f", validation PSNR {psnr:.2f} dB" if psnr else ""))
    return "\n".join(lines)


def _split_line(d, args: argparse.Namespace) -> str:
    """How many photos (or pairs) ``fit`` found and how it split them, from ``d.training`` (set before the
    first epoch): ``8 photos: 7 training, 1 validation``, or why there is no validation."""
    train, val = int(d.training.get("train_items", 0)), int(d.training.get("validation_items", 0))
    noun = "pair" if args.pairs else "photo"
    if args.validation:
        return f"{count(train, noun)} for training, {val} for validation ({args.validation})"
    if val:
        return f"{count(train + val, noun)}: {train} training, {val} validation"
    # fit's split (blurkit.data.pipeline.split) holds out at least one item when there are two or more
    why = "--val-split 0" if args.val_split == 0 else "needs at least 2"
    return f"{count(train, noun)}: no validation split ({why}); the curves show the training loss only"


def _announce(line) -> object:
    """A Keras callback that prints ``line()`` when training begins (after fit has read and split the data,
    before the first epoch)."""
    import keras

    class Announce(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            print(line(), flush=True)

    return Announce()


def _pairs_blur(blurred_dir: str) -> dict | None:
    """The blur that made the pairs in ``blurred_dir``, from the manifest `blurkit make-pairs` writes beside it
    (``serialize_blur``'s dict, for the model to record as its training blur), or None when there is none
    that this installation can rebuild (pairs made elsewhere, or by a plugin's blur not installed here)."""
    import json
    from pathlib import Path

    from blurkit.blurs import deserialize_blur
    from blurkit.data.pairs import MANIFEST_NAME

    manifest = Path(blurred_dir).parent / MANIFEST_NAME
    try:
        with open(manifest, encoding="utf-8") as fh:
            blur = json.loads(fh.readline()).get("blur")
        deserialize_blur(blur)
    except Exception:  # noqa: BLE001 - no manifest, another format, an unknown blur: the default is recorded
        return None
    return blur
