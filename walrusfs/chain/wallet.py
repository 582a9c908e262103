"""walrusfs's Sui wallet: one key, kept in a pysui configuration inside a walrusfs-owned
directory (mode 0700, files 0600), never in ~/.pysui.

pysui stores private keys in plain text in PysuiConfig.json, so the file is written by us with
mode 0600 (temporary file, fsync, rename, fsync of the directory) and its permissions are
checked every time it is opened. Keys come from `generate_key`, from a Sui keystore
(~/.sui/sui_config/sui.keystore: a JSON list of base64 "flag ‖ private key" strings) or from a
bech32 `suiprivkey1…` string.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import stat
from pathlib import Path

from pysui import PysuiConfiguration
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_common.config import confgroup, confmodel
from pysui.sui.sui_crypto import SuiKeyPair, create_new_keypair, keypair_from_keystring

from walrusfs.durable import write_durably

from .config import NetworkConfig, long_address
from .errors import ChainConfigError

log = logging.getLogger(__name__)

CONFIG_FILE = "PysuiConfig.json"
GROUP = "walrusfs"
ALIAS = "walrusfs"
DEFAULT_KEYSTORE = Path("~/.sui/sui_config/sui.keystore")

_NETWORK_TYPES = {
    "local": confgroup.NetworkType.LOCAL,
    "devnet": confgroup.NetworkType.DEVELOP,
    "testnet": confgroup.NetworkType.TEST,
    "mainnet": confgroup.NetworkType.PRODUCTION,
}


def _keypair(keystring: str) -> SuiKeyPair:
    try:
        kp = keypair_from_keystring(keystring.strip())
    except Exception as exc:  # pysui raises ValueError and its own exception types
        raise ChainConfigError(f"not a Sui private key: {exc}") from None
    if not isinstance(kp, SuiKeyPair):
        raise ChainConfigError("not a Sui private key")
    return kp


def generate_key() -> str:
    """A new Ed25519 key, as a base64 Sui keystring (flag ‖ private key)."""
    _mnemonic, kp = create_new_keypair(SignatureScheme.ED25519)
    return str(kp.serialize())


def key_from_text(text: str) -> str:
    """A keystring from a bech32 `suiprivkey1…` or a base64 (flag ‖ key) string."""
    return str(_keypair(text).serialize())


def address_of(keystring: str) -> str:
    """The Sui address of a key: Blake2b-256(flag ‖ public key)."""
    kp = _keypair(keystring)
    assert kp.public_key is not None
    return "0x" + hashlib.blake2b(kp.public_key.scheme_and_key(), digest_size=32).hexdigest()


def key_from_keystore(path: Path | None = None, address: str | None = None) -> str:
    """The key for `address` in a Sui keystore (default ~/.sui/sui_config/sui.keystore).

    Without `address`: the keystore's only key, or the `active_address` of the client.yaml
    next to it.
    """
    path = (path or DEFAULT_KEYSTORE).expanduser()
    try:
        entries = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ChainConfigError(f"cannot read the Sui keystore {path}: {exc}") from None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ChainConfigError(f"{path} is not a Sui keystore (a JSON list of keys)")
    keys = {address_of(e): key_from_text(e) for e in entries}
    if address is None:
        if len(keys) == 1:
            return next(iter(keys.values()))
        active = _active_address(path.with_name("client.yaml"))
        if active is None:
            raise ChainConfigError(f"{path} holds {len(keys)} keys; say which address to use")
        address = active
    wanted = long_address(address)
    if wanted not in keys:
        raise ChainConfigError(f"{path} holds no key for {wanted}")
    return keys[wanted]


def _active_address(client_yaml: Path) -> str | None:
    try:
        text = client_yaml.read_text("utf-8")
    except OSError:
        return None
    m = re.search(r"^active_address:\s*\"?(0x[0-9a-fA-F]+)\"?\s*$", text, re.MULTILINE)
    return m.group(1) if m else None


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode != 0o700:
        os.chmod(directory, 0o700)


def write_wallet(directory: Path, network: NetworkConfig, keystring: str) -> str:
    """Write the pysui configuration for `network` with this key; return the address."""
    kp = _keypair(keystring)
    assert kp.public_key is not None
    address = address_of(keystring)
    profile = confgroup.Profile(
        network.name,
        network.graphql_url,
        network.faucet_url,
        None,
        _NETWORK_TYPES[network.network_type],
    )
    group = confgroup.ProfileGroup(
        GROUP,
        network.name,
        address,
        [confgroup.ProfileAlias(ALIAS, base64.b64encode(kp.public_key.scheme_and_key()).decode())],
        [confgroup.ProfileKey(str(kp.serialize()))],
        [address],
        [profile],
        confgroup.GroupProtocol.GRAPHQL,
    )
    model = confmodel.PysuiConfigModel(confmodel._CURRENT_CONFIG_VERSION, "", GROUP, [group])
    _private_dir(directory)
    write_durably(directory / CONFIG_FILE, model.to_json(indent=2).encode())
    return address


def load_pysui_config(directory: Path, network: NetworkConfig) -> PysuiConfiguration:
    """Open the pysui configuration, pointed at `network` (in memory; the file is not rewritten)."""
    path = directory / CONFIG_FILE
    if not path.exists():
        raise ChainConfigError(f"no wallet in {directory}; create one first")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting 0600", path, mode)
        os.chmod(path, 0o600)
    _private_dir(directory)
    try:
        cfg = PysuiConfiguration(from_cfg_path=str(directory), group_name=GROUP, persist=False)
    except Exception as exc:
        raise ChainConfigError(f"cannot load the wallet in {directory}: {exc}") from None
    group = cfg.active_group
    profile = next((p for p in group.profiles if p.profile_name == network.name), None)
    if profile is None:
        cfg.new_profile(
            profile_name=network.name,
            url=network.graphql_url,
            network_type=_NETWORK_TYPES[network.network_type],
            faucet_url=network.faucet_url,
            make_active=True,
            persist=False,
        )
    else:
        profile.url = network.graphql_url
        profile.faucet_url = network.faucet_url
        cfg.make_active(profile_name=network.name, persist=False)
    return cfg


def wallet_address(directory: Path) -> str:
    """The address of the wallet in `directory`."""
    try:
        doc = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
        group = next(g for g in doc["groups"] if g["group_name"] == GROUP)
        return str(group["using_address"])
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ChainConfigError(f"no usable wallet in {directory}: {exc}") from None


def wallet_key(directory: Path) -> str:
    """The private key of the wallet in `directory`, in the form key_from_text reads (to
    back it up, or to mount the filesystem on another machine)."""
    try:
        doc = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
        group = next(g for g in doc["groups"] if g["group_name"] == GROUP)
        return str(group["key_list"][0]["private_key_base64"])
    except (OSError, ValueError, KeyError, IndexError, StopIteration) as exc:
        raise ChainConfigError(f"no usable wallet in {directory}: {exc}") from None
