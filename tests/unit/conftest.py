from __future__ import annotations

import pytest

from domain.customers.application import CustomersApp
from infra.bootstrap import Container


@pytest.fixture
def app(container: Container) -> CustomersApp:
    return container.customers
