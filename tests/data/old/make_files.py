"""Write files with the blurkit first on ``PYTHONPATH`` (an old commit's ``src``), for tests/test_old_files.py.

usage, in an empty folder:
    python make_files.py Photos train Photos --out out/model.keras ...   (the command line: ``blurkit train``)
    python make_files.py --arrays state                                  (``Deblurrer.fit`` on in-memory photos)
    python make_files.py --edge edge.keras                               (a model file: :data:`EDGE`)
The first two write the training state of an interrupted run: it is stopped, as by a kill, right after it
saved its first epoch's state. The first writes the photos (:func:`photos`) into the folder named first, as
p0.png .. p2.png, then runs the command; the second trains on the same photos as arrays, with the settings of
:data:`ARRAYS_RUN`, its state in the folder named. tests/test_old_files.py makes the same photos and resumes
each run with this release. The third saves an untrained Deblurrer with the settings of :data:`EDGE`.
"""
import os
import sys

import cv2
import numpy as np

#: Deblurrer(...) and fit(...) arguments of the in-memory run.
ARRAYS_RUN = (dict(model="unet", model_options=dict(width=4, depth=1, blocks=1), patch_size=16, batch_size=2,
                   patches_per_image=1, seed=5),
              dict(epochs=2, steps_per_epoch=1, validation_split=0.34, verbose=0))

#: Deblurrer(...) arguments of the model file: settings the constructor of 2026-11-26 (c5294e5) took and a
#: later one refuses (a tile of 10**6 meant "never tile"; a seed of 2**40; a motion blur of 601-px kernels).
EDGE = dict(model="unet", model_options=dict(width=4, depth=1, blocks=1), patch_size=16, tile_size=10**6,
            seed=2**40, blur="motion", blur_options=dict(length=(3, 600)))


def photos() -> list:
    """Three 40 x 40 RGB photos (uint8, BGR as OpenCV writes them), the same on every run."""
    rng = np.random.default_rng(2026)
    return [cv2.resize(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), (40, 40), interpolation=cv2.INTER_LINEAR)
            for _ in range(3)]


def stop_after_first_state() -> None:
    """Make the process end (exit status 9) right after the first training state is written."""
    from blurkit.deblurrer import Deblurrer

    write = Deblurrer._write

    def stop(self, path, *args, **kwargs):
        out = write(self, path, *args, **kwargs)
        if kwargs.get("resume") is not None:
            os._exit(9)  # as if killed once the first epoch's training state is on disk
        return out

    Deblurrer._write = stop


if __name__ == "__main__":
    stop_after_first_state()
    if sys.argv[1] == "--edge":
        from blurkit import Deblurrer

        Deblurrer(**EDGE).save(sys.argv[2])
    elif sys.argv[1] == "--arrays":
        from blurkit import Deblurrer

        init, fit = ARRAYS_RUN
        Deblurrer(**init).fit(np.stack(photos()), checkpoint_dir=sys.argv[2], **fit)
    else:
        os.makedirs(sys.argv[1])
        for i, photo in enumerate(photos()):
            cv2.imwrite(os.path.join(sys.argv[1], f"p{i}.png"), photo)
        from blurkit.cli.main import main

        sys.argv = ["blurkit", *sys.argv[2:]]
        sys.exit(main())
