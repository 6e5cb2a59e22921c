"""The WeasyPrint speed-ups say whether they are active: for the pinned versions they are, for any other not."""
import tomllib
from pathlib import Path
from types import SimpleNamespace

import httpx
import pydyf
import pytest
import sqlalchemy as sa
import weasyprint
from weasyprint import css

from kontor import api
from kontor.settings import ServiceSettings
from kontor_invoicing.adapters import weasyprint_speedups
from kontor_invoicing.adapters.weasyprint_speedups import font_cache, patching, style_cache

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def test_the_versions_written_for_are_the_ones_pinned_and_locked():
    dependencies = tomllib.loads((ROOT / "services/invoicing/pyproject.toml").read_text())["project"]["dependencies"]
    lock = {package["name"]: package["version"] for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
            if "version" in package}
    for name, version in weasyprint_speedups.WRITTEN_FOR.items():
        assert f"{name}=={version}" in dependencies, f"pyproject.toml pins {name} exactly to what the copies are for"
        assert lock[name] == version, f"uv.lock has {name} {lock[name]}, the speed-ups are for {version}"


def test_active_for_the_installed_pinned_versions():
    status = weasyprint_speedups.status()
    assert status["installed"] == {"weasyprint": weasyprint.__version__, "pydyf": pydyf.__version__}
    assert status["written_for"] == {"weasyprint": "70.0", "pydyf": "0.13.0"}
    assert status["active"] is True, status["reason"]
    assert status["installed"] == status["written_for"]


@pytest.mark.parametrize(("module", "other"), [(weasyprint, "71.0"), (pydyf, "0.14.0")])
def test_inactive_with_a_reason_for_another_version(monkeypatch, module, other):
    name = module.__name__
    monkeypatch.setattr(module, "__version__", other)
    status = weasyprint_speedups.status()
    assert status["active"] is False
    assert status["installed"][name] == other and status["written_for"][name] != other
    assert f"{name} {other} installed, written for {status['written_for'][name]}" in status["reason"]
    # and the guard agrees: install() leaves WeasyPrint's code alone
    assert not patching.written_for_this_weasyprint("test")
    before = css.StyleFor.set_computed_styles, font_cache.fonts.Font.clean
    assert style_cache.install() is False and font_cache.install() is False
    assert (css.StyleFor.set_computed_styles, font_cache.fonts.Font.clean) == before


def test_inactive_when_an_install_declined(monkeypatch):
    monkeypatch.setattr(patching, "_declined", {})
    assert patching.decline("Pango cache", "unexpected PangoGlyphInfo layout") is False
    status = weasyprint_speedups.status()
    assert status["active"] is False and "Pango cache: unexpected PangoGlyphInfo layout" in status["reason"]


class _Logger:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict]] = []

    def info(self, event, **fields):
        self.records.append(("info", event, fields))

    def warning(self, event, **fields):
        self.records.append(("warning", event, fields))


def test_log_status_is_info_when_active_and_a_warning_when_not(monkeypatch):
    logger = _Logger()
    assert weasyprint_speedups.log_status(logger)["active"]
    monkeypatch.setattr(weasyprint, "__version__", "71.0")
    assert not weasyprint_speedups.log_status(logger)["active"]
    (level1, _, fields1), (level2, _, fields2) = logger.records
    assert (level1, level2) == ("info", "warning")
    assert fields1["installed"]["weasyprint"] == "70.0" and fields2["installed"]["weasyprint"] == "71.0"
    assert "weasyprint 71.0 installed" in fields2["reason"]


def _client(**kw) -> httpx.AsyncClient:
    """An app from `create_service_api` without its lifespan (no engine): the checks are stubbed."""
    app = api.create_service_api(title="t", description="t", settings=ServiceSettings(),
                                 outbox_table=sa.Table("outbox", sa.MetaData()), routers=[], **kw)
    app.dependency_overrides[api.get_context] = lambda: SimpleNamespace(engine=None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_readyz_shows_the_status_under_details_and_stays_ready_without_the_speed_ups(monkeypatch):
    async def reachable(*_args, **_kwargs):
        return None

    monkeypatch.setattr(api, "ping", reachable)
    monkeypatch.setattr(api, "check_reachable", reachable)
    async with _client(readiness_details=weasyprint_speedups.status) as client:
        answer = await client.get("/readyz")
        assert answer.status_code == 200 and answer.json()["details"] == weasyprint_speedups.status()
        assert answer.json()["details"]["active"] is True

        monkeypatch.setattr(weasyprint, "__version__", "71.0")
        answer = await client.get("/readyz")
        assert answer.status_code == 200 and answer.json()["status"] == "ready"
        assert answer.json()["details"]["active"] is False
    async with _client() as client:
        assert "details" not in (await client.get("/readyz")).json()
