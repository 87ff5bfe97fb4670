"""The conformance suite through qdrant-client.

No Qdrant server can run on these machines, so this runs qdrant-client's in-process local
mode as the stand-in for a server: the same client calls, functionally equal, far slower.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient

from index.client import ClientStore
from tests.contracts.store_suite import StoreSuite


class TestClientStore(StoreSuite):
    @pytest.fixture
    def store(self) -> Iterator[ClientStore]:
        s = ClientStore(QdrantClient(location=":memory:"))
        yield s
        s.close()
