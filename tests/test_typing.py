"""blurkit ships ``py.typed``: its type hints must hold, for the package and for the code of its users.

mypy (pinned in the ``dev`` extra; settings in pyproject.toml's ``[tool.mypy]``) checks the whole package,
the bodies of unannotated functions too, together with a user's script written from the README and
docs/plugins.md (it must pass, and what it is told about blurkit's names must be exact: not ``Any``) and a
script with mistakes a type checker exists to catch (names blurkit does not have)."""

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]

USER = '''
from typing import Any

import numpy as np

import blurkit
from blurkit import Deblurrer, ModelFileError, psnr, register_blur, register_metric, register_model
from blurkit.blurs.base import Blur, check_range, jsonable


@register_metric
def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y_true - y_pred)))


@register_metric("mae2")
def mae2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return 0.0


@register_model("tiny")
def tiny(channels: int = 3) -> object:
    return None


@register_blur
class Vertical(Blur):
    name = "vertical"
    version = 1

    def __init__(self, half: int | tuple[int, int] = (1, 4), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.half = check_range("half", half, minimum=0, integer=True)

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        low, high = self.half if isinstance(self.half, tuple) else (self.half, self.half)
        return {"half": int(rng.integers(low, high + 1))}

    def kernel(self, params: dict) -> np.ndarray:
        n = 2 * params["half"] + 1
        return np.full((n, 1), 1.0 / n)

    def get_config(self) -> dict:
        return {"half": jsonable(self.half), **super().get_config()}


def run(path: str, images: list[np.ndarray]) -> None:
    try:
        d = Deblurrer.from_preset()
    except ModelFileError:
        return
    one: np.ndarray = d.predict(path)
    many: list = d.predict(images)
    sigma: float = d.estimate_sigma(path)
    score: float = psnr(one, many[0])
    print(round(d.estimate_sigma(images[0]), 1), sigma, score, blurkit.__version__, blurkit.BLURS.list())
    reveal_type(d.predict(images))
    reveal_type(d.predict(images[0]))
    reveal_type(d.estimate_sigma(images))


reveal_type(mae)
reveal_type(mae2)
reveal_type(tiny)
reveal_type(Vertical)
reveal_type(psnr)
reveal_type(blurkit.metrics)
'''

MISTAKES = '''
import blurkit
from blurkit import ModelFileErr
blurkit.Deblurer
from blurkit.models import NoSuchLayer
'''


def test_the_package_and_a_users_code_type_check(tmp_path):
    (tmp_path / "user.py").write_text(USER)
    (tmp_path / "mistakes.py").write_text(MISTAKES)
    # a cache of its own: the run does not depend on (or write) one in the checkout
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "c"),
                                str(ROOT / "src" / "blurkit"), str(tmp_path / "user.py"),
                                str(tmp_path / "mistakes.py")])
    assert status == 1, out + err  # the mistakes only
    lines = out.splitlines()
    errors = [line for line in lines if ": error:" in line]
    assert all("mistakes.py" in line for line in errors), out  # the package and the user's script pass
    assert len(errors) == 3, out
    assert 'Module "blurkit" has no attribute "ModelFileErr"' in out
    assert 'Module has no attribute "Deblurer"' in out
    assert 'Module "blurkit.models" has no attribute "NoSuchLayer"' in out
    revealed = [re.sub(r".*Revealed type is ", "", line) for line in lines if "Revealed type is" in line]
    assert len(revealed) == 9, out
    assert not any(r.strip('"') == "Any" for r in revealed), revealed  # exact types, not Any
    predicted_list, predicted_one, sigmas = revealed[:3]  # in run(): a list in, a list out; an array, an array
    assert predicted_list == '"list[Any]"' and sigmas == '"list[Any]"', revealed
    assert predicted_one.startswith('"numpy.ndarray['), revealed
    mae, mae2, tiny, vertical, psnr, metrics = revealed[3:]  # the decorators keep what they decorate
    assert mae.endswith('-> float"') and mae2.endswith('-> float"'), revealed
    assert tiny == '"def (channels: int =) -> object"', revealed
    assert "-> user.Vertical" in vertical and psnr.endswith('-> float"'), revealed
    assert metrics == '"types.ModuleType"', revealed  # a module, not Any: blurkit.metrics.nothing fails
