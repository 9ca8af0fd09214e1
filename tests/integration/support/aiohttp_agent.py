"""An agent on aiohttp with its defaults: `trust_env=False`, so proxy variables are ignored
and every request goes straight to the host it names (tests/integration/strict.rs)."""
import asyncio
import os

import aiohttp


async def main():
    os.makedirs("out", exist_ok=True)
    async with aiohttp.ClientSession() as session:
        with open("out/result.txt", "w") as out:
            for url in ("http://data.example.com/v1/items", "https://secure.example.com/v1/items"):
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    out.write(await resp.text())


asyncio.run(main())
