"""tests/reference/check_util.py — the assertions shared by the twin's self-checks (check_reference.py,
check_moe_mtp.py): they raise AssertionError with what differed and by how much."""
import torch

# float64 everywhere in the checks: two versions of one computation differ only by rounding, ~1e-15 relative;
# 1e-10 leaves room for accumulation over a few hundred terms and is still far below any real mistake (a wrong
# angle, head, mask or weight gives O(1e-3) or more).
TOL = 1e-10


def expect_close(what, a, b, tol=TOL):
    err = (a - b).abs().max().item()
    if not err <= tol:
        raise AssertionError(f"{what}: differs by {err:.3e} (allowed {tol:.1e})")


def expect_raises(what, exc_type, fn, needle):
    try:
        fn()
    except exc_type as e:
        if needle not in str(e):
            raise AssertionError(f"{what}: error message {str(e)!r} does not mention {needle!r}") from None
        return
    raise AssertionError(f"{what}: expected {exc_type.__name__}, nothing was raised")
