"""Outbound HTTP: one aiohttp session per proxy setting, and body decoding.

aiohttp's own decompression only runs when the upstream labels its body, so
it is switched off and :class:`BodyReader` decodes gzip and deflate itself,
sniffing the magic bytes when the label is missing or wrong.
"""

from __future__ import annotations

import zlib
from typing import Any

import aiohttp

DIRECT = ("", "direct", "none")


class Sessions:
    """Lazily created ``aiohttp.ClientSession`` objects, one per proxy URL."""

    def __init__(self, default_proxy: str = "", connect_timeout: float = 30.0) -> None:
        self.default_proxy = default_proxy
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=None)

    def _key(self, proxy: str | None) -> str:
        proxy = self.default_proxy if proxy is None or proxy == "" else proxy
        return "" if proxy in DIRECT else proxy

    def get(self, proxy: str | None = None) -> tuple[aiohttp.ClientSession, dict[str, Any]]:
        """The session for ``proxy`` (None = the global ``proxy-url``) and per-request options."""
        key = self._key(proxy)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self._make(key)
        options: dict[str, Any] = {}
        if key.startswith(("http://", "https://")):
            options["proxy"] = key  # aiohttp tunnels HTTP(S) proxies per request
        return session, options

    def _make(self, proxy: str) -> aiohttp.ClientSession:
        if proxy.startswith(("socks5://", "socks5h://", "socks4://")):
            from aiohttp_socks import ProxyConnector

            connector: aiohttp.BaseConnector = ProxyConnector.from_url(proxy, limit=0)
        else:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        # An HTTP(S) proxy is also the session default, so code handed only the session
        # (token refresh, login) goes through it too.
        default_proxy = proxy if proxy.startswith(("http://", "https://")) else None
        return aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False, skip_auto_headers=("User-Agent",),
            proxy=default_proxy,
        )

    async def close(self) -> None:
        """Close every session (app shutdown)."""
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


class BodyReader:
    """Reads an upstream body chunk by chunk, decoding gzip/deflate."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self._label = response.headers.get("Content-Encoding", "").lower().strip()
        self._decoder: Any = None
        self._sniffed = False

    def _pick_decoder(self, first: bytes) -> None:
        self._sniffed = True
        if first[:2] == b"\x1f\x8b" or self._label in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._label == "deflate" or (len(first) >= 2 and _looks_like_zlib(first)):
            # "deflate" is zlib-wrapped by the RFC but raw in practice; the
            # header check tells which.
            wbits = zlib.MAX_WBITS if _looks_like_zlib(first) else -zlib.MAX_WBITS
            self._decoder = zlib.decompressobj(wbits)

    async def read_chunk(self) -> bytes:
        """The next decoded bytes; ``b""`` at the end of the body."""
        while True:
            data = await self.response.content.readany()
            if not data:
                if self._decoder is not None:
                    tail: bytes = self._decoder.flush()
                    self._decoder = None
                    return tail
                return b""
            if not self._sniffed:
                self._pick_decoder(data)
            if self._decoder is None:
                return data
            out: bytes = self._decoder.decompress(data)
            if out:
                return out

    async def read_all(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole decoded body (up to ``limit`` bytes)."""
        parts = []
        size = 0
        while chunk := await self.read_chunk():
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(parts)


def _looks_like_zlib(data: bytes) -> bool:
    # zlib header: CMF 0x78 (deflate, 32K window) and (CMF*256 + FLG) % 31 == 0.
    return data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0
