# The PII rules' one-pass path, built from connectors/pii_native (Rust) when a toolchain
# is there at install time.
from collections.abc import Callable

class Rules:
    def __init__(
        self,
        rules: list[tuple[str, str]],
        key: bytes,
        mask_ip: Callable[[str], str],
        fallback: Callable[[bytes], bytes],
    ) -> None: ...
    def apply(self, raw: bytes) -> bytes: ...
    def serves(self, raw: bytes) -> bool: ...
