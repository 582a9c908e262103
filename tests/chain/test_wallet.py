"""The wallet directory, keys, and network settings."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pysui import PysuiConfiguration
from pysui.sui.sui_crypto import SignatureScheme, create_new_keypair

from walrusfs.chain import (
    ChainConfigError,
    address_of,
    generate_key,
    key_from_keystore,
    key_from_text,
    load_networks,
    network,
    write_wallet,
)
from walrusfs.chain.wallet import CONFIG_FILE, load_pysui_config, wallet_address
from walrusfs.devnet.ledger import LedgerConfig


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_wallet_files_are_private_and_pysui_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    net = network("devnet")
    key = generate_key()
    directory = tmp_path / "state" / "wallet"
    old = os.umask(0)
    try:
        address = write_wallet(directory, net, key)
    finally:
        os.umask(old)
    assert mode(directory) == 0o700 and mode(directory / CONFIG_FILE) == 0o600
    assert address == address_of(key) == wallet_address(directory)
    cfg = load_pysui_config(directory, net)
    assert isinstance(cfg, PysuiConfiguration)
    assert cfg.active_address == address and cfg.url == net.graphql_url
    assert not (tmp_path / "home" / ".pysui").exists()  # never ~/.pysui
    # a loosened file is tightened again when opened
    os.chmod(directory / CONFIG_FILE, 0o644)
    other = network("devnet", graphql_url="http://127.0.0.1:1/graphql")
    assert load_pysui_config(directory, other).url == other.graphql_url
    assert mode(directory / CONFIG_FILE) == 0o600
    with pytest.raises(ChainConfigError):
        load_pysui_config(tmp_path / "nowhere", net)


def test_keys_from_a_sui_keystore_and_bech32(tmp_path: Path):
    pairs = [create_new_keypair(SignatureScheme.ED25519)[1] for _ in range(3)]
    strings = [kp.serialize() for kp in pairs]
    keystore = tmp_path / "sui_config" / "sui.keystore"
    keystore.parent.mkdir()
    keystore.write_text(json.dumps(strings))
    addresses = [address_of(s) for s in strings]
    assert key_from_keystore(keystore, addresses[1]) == strings[1]
    with pytest.raises(ChainConfigError, match="3 keys"):
        key_from_keystore(keystore)
    (keystore.parent / "client.yaml").write_text(
        f'keystore:\n  File: {keystore}\nactive_env: devnet\nactive_address: "{addresses[2]}"\n'
    )
    assert key_from_keystore(keystore) == strings[2]
    with pytest.raises(ChainConfigError, match="no key"):
        key_from_keystore(keystore, "0x1234")
    single = tmp_path / "one.keystore"
    single.write_text(json.dumps(strings[:1]))
    assert key_from_keystore(single) == strings[0]
    bech = pairs[0].to_bech32()
    assert bech.startswith("suiprivkey1") and key_from_text(bech) == strings[0]
    with pytest.raises(ChainConfigError):
        key_from_text("suiprivkey1notakey")
    with pytest.raises(ChainConfigError):
        key_from_keystore(tmp_path / "missing.keystore")


def test_networks_are_data(tmp_path: Path):
    nets = load_networks()
    assert set(nets) >= {"devnet", "testnet", "mainnet"}
    assert nets["mainnet"].system_object_id == (
        "0x2134d52768ea07e8c43570ef975eb3e4c27a39fa6396bef985b5abc58d03ddd2"
    )
    assert nets["testnet"].wal_coin_type.endswith("::wal::WAL")
    # the devnet entry matches the ids the devnet ledger is created with
    dev, ledger = nets["devnet"], LedgerConfig(directory=tmp_path)
    assert dev.walrus_package_id == ledger.walrus_package_id
    assert dev.system_object_id == ledger.system_object_id
    assert dev.wal_coin_type == f"{ledger.wal_package_id}::wal::WAL"
    user = tmp_path / "networks.toml"
    user.write_text(
        '[devnet]\ngraphql_url = "http://127.0.0.1:9/graphql"\n\n'
        '[local2]\ngraphql_url = "http://x/graphql"\nwalrus_package_id = "0x1"\n'
        'system_object_id = "0x2"\nwal_coin_type = "0x3::wal::WAL"\n'
    )
    merged = load_networks(user)
    assert merged["devnet"].graphql_url == "http://127.0.0.1:9/graphql"
    assert merged["devnet"].system_object_id == dev.system_object_id
    assert merged["local2"].walrus_package_id == "0x" + "0" * 63 + "1"
    user.write_text("[devnet]\nbogus = 1\n")
    with pytest.raises(ChainConfigError, match="unknown keys"):
        load_networks(user)
    user.write_text('[x]\ngraphql_url = "u"\n')
    with pytest.raises(ChainConfigError, match="incomplete"):
        load_networks(user)
    with pytest.raises(ChainConfigError, match="unknown network"):
        network("moonnet")
