"""The sync and async clients are two drivers of one set of operations (azr_client._plans):
same public methods, same parameters, same return types, nothing either one adds alone."""

from __future__ import annotations

import inspect

import pytest
from azr_client import AsyncVerificationClient, VerificationClient
from azr_client._plans import Operations

#: Lifecycle differs by nature: ``with`` / ``close`` against ``async with`` / ``aclose``.
LIFECYCLE = {"close": "aclose"}


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_same_public_methods_with_same_signatures() -> None:
    sync, aio = public(VerificationClient), public(AsyncVerificationClient)
    for sync_name, async_name in LIFECYCLE.items():
        assert sync.pop(sync_name).parameters.keys() == aio.pop(async_name).parameters.keys()
    assert sorted(sync) == sorted(aio)
    for name in sync:
        assert sync[name] == aio[name], f"{name}: {sync[name]} != {aio[name]}"


def test_every_operation_is_driven_by_both_clients_with_its_parameters() -> None:
    ops = public(Operations)
    sync = public(VerificationClient)
    assert set(ops) == set(sync) - set(LIFECYCLE), "a client method not written once in _plans.Operations"
    for name, sig in ops.items():
        assert list(sig.parameters.values()) == list(sync[name].parameters.values()), name


@pytest.mark.parametrize("name", sorted(public(Operations)))
def test_async_methods_are_coroutines_except_pure_parsers(name: str) -> None:
    method = getattr(AsyncVerificationClient, name)
    assert inspect.iscoroutinefunction(method) == (name not in Operations.PURE), name
    assert not inspect.iscoroutinefunction(getattr(VerificationClient, name))


def test_constructors_take_the_same_settings() -> None:
    sync = inspect.signature(VerificationClient.__init__).parameters
    aio = inspect.signature(AsyncVerificationClient.__init__).parameters
    assert sync.keys() == aio.keys()
    for name in sync:
        if name != "transport":  # httpx.BaseTransport vs httpx.AsyncBaseTransport
            assert sync[name] == aio[name], name
