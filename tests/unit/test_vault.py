"""Personal data is sealed with the customer's own key; destroying the key is erasure."""

from __future__ import annotations

import secrets
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag

from domain.scope import Scope
from domain.shared import Gone
from infra.bootstrap import Container, bootstrap
from infra.crypto import Vault, mask_name, mask_phone
from infra.db import Database
from infra.settings import Settings
from tests.factories import meta
from tests.unit.world import embedded_only, hire


def test_a_sealed_value_opens_again_for_the_same_customer(container: Container) -> None:
    vault, customer = container.vault, uuid4()

    sealed = vault.seal(customer, "13812345678")

    assert sealed.startswith("pd1.")
    assert "13812345678" not in sealed
    assert vault.unseal(customer, sealed) == "13812345678"
    assert vault.seal(customer, "13812345678") != sealed  # a fresh nonce every time


@embedded_only
def test_a_value_sealed_for_one_customer_does_not_open_for_another(
    container: Container,
) -> None:
    vault, alice, bob = container.vault, uuid4(), uuid4()
    sealed = vault.seal(alice, "13812345678")
    vault.seal(bob, "13900000000")

    with pytest.raises(InvalidTag):
        vault.unseal(bob, sealed)


@embedded_only
def test_a_value_that_is_not_sealed_is_refused(container: Container) -> None:
    with pytest.raises(ValueError):
        container.vault.unseal(uuid4(), "13812345678")


def test_after_erasure_nothing_opens_and_nothing_new_can_be_sealed(
    container: Container,
) -> None:
    vault, customer = container.vault, uuid4()
    sealed = vault.seal(customer, "13812345678")

    assert vault.destroy(customer) is True
    assert vault.destroy(customer) is False

    assert vault.unseal(customer, sealed) is None
    with pytest.raises(Gone) as erased:
        vault.seal(customer, "13900000000")
    assert erased.value.code == "erased"
    assert vault.unseal(customer, sealed) is None


def test_erasure_reaches_a_vault_that_had_not_cached_the_key(
    container: Container, settings: Settings
) -> None:
    customer = uuid4()
    sealed = container.vault.seal(customer, "13812345678")
    other_db = Database(settings.key_db_url())
    other = Vault(other_db, settings.master_key_bytes())
    try:
        container.vault.destroy(customer)
        assert other.unseal(customer, sealed) is None
    finally:
        other_db.close()


def test_a_phone_cannot_be_added_to_an_erased_customer(container: Container) -> None:
    app = container.customers
    hire(app, "a")
    customer_id = UUID(
        app.add_customer(identities=[("phone", "13812345678")], tags=[], owner="a", meta=meta()).id
    )
    container.vault.destroy(customer_id)
    head = container.head()

    with pytest.raises(Gone):
        app.add_identity(
            customer_id, kind="phone", value="13900000000", scope=Scope("admin"), meta=meta()
        )

    assert container.head() == head


def test_the_blind_index_is_stable_and_keyed(embedded_settings: Settings) -> None:
    db = Database(embedded_settings.key_db_url())
    key = embedded_settings.master_key_bytes()
    try:
        vault, restarted = Vault(db, key), Vault(db, key)
        stranger = Vault(db, secrets.token_bytes(32))

        index = vault.blind_index("phone", "13812345678")

        assert index == vault.blind_index("phone", "13812345678")
        assert index == restarted.blind_index("phone", "13812345678")
        assert index != vault.blind_index("phone", "13812345679")
        assert index != vault.blind_index("openid", "13812345678")
        assert index != stranger.blind_index("phone", "13812345678")
        assert "13812345678" not in index
    finally:
        db.close()


def test_phones_and_names_are_masked_for_display() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86*******5678"
    assert mask_phone("123456") == "1*****"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "张*"


def test_keys_made_in_bulk_seal_like_any_other_and_erasure_still_holds(
    container: Container, settings: Settings
) -> None:
    vault = container.vault
    ids = {uuid4() for _ in range(1200)}  # more than one chunk of the key store's queries
    erased = uuid4()
    vault.destroy(erased)
    vault.ensure_keys(ids | {erased})
    sealed = {i: vault.seal(i, f"v{i}") for i in list(ids)[:50]}
    with pytest.raises(Gone):
        vault.seal(erased, "x")
    other = bootstrap(settings)  # another process: it reads the same keys back
    try:
        other.vault.ensure_keys(set(sealed))
        assert all(other.vault.unseal(i, t) == f"v{i}" for i, t in sealed.items())
    finally:
        other.close()


def test_a_key_ring_opens_with_whichever_candidate_sealed_the_value(
    container: Container,
) -> None:
    vault, alice, bob, never = container.vault, uuid4(), uuid4(), uuid4()
    for_alice, for_bob = vault.seal(alice, "13812345678"), vault.seal(bob, "13900000000")
    ring = vault.key_ring()

    # Bob's key is known to the ring only after the first answer; `never` has no key at all.
    assert ring.open_with_any([(for_alice, [alice, never])]) == [("13812345678", False)]
    assert ring.open_with_any([(for_bob, [alice, never, bob]), (for_alice, [bob, alice])]) == [
        ("13900000000", False),
        ("13812345678", False),
    ]
    assert ring.open_with_any([(for_bob, [alice, never]), ("13812345678", [alice])]) == [
        (None, False),  # no candidate opens it
        (None, False),  # not a sealed value
    ]


def test_a_key_ring_keeps_the_keys_as_the_store_had_them_where_the_vault_asks_afresh(
    container: Container,
) -> None:
    """A ring is for one long read that checks erasures itself at its end (an export): it asks
    the key store once per key. `Vault.open_with_any` asks every time."""
    vault, alice, bob = container.vault, uuid4(), uuid4()
    for_alice, for_bob = vault.seal(alice, "13812345678"), vault.seal(bob, "13900000000")
    ring = vault.key_ring()
    assert ring.open_with_any([(for_alice, [alice])]) == [("13812345678", False)]

    vault.destroy(alice)
    vault.destroy(bob)

    assert ring.open_with_any([(for_alice, [alice])]) == [("13812345678", False)]
    assert ring.open_with_any([(for_bob, [alice, bob])]) == [(None, True)]  # asked after
    assert vault.open_with_any([(for_alice, [alice])]) == [(None, True)]
