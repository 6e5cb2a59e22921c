"""Fixtures of the portal's service tests: the real services with a seeded order per member, and a
browser of the portal signed in as member-1 (English)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from portal_support import Seeded, dev_sign_in, platform, portal_client


@pytest.fixture
async def seeded(infra, topic_prefix) -> AsyncIterator[Seeded]:
    async with platform(infra, topic_prefix) as s:
        yield s


@pytest.fixture
async def browser(seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with portal_client(seeded.settings, cookies={"kontor_lang": "en"}) as client:
        r = await dev_sign_in(client, "member-1", "member", "Mia Member")
        assert r.status_code == 303
        yield client
