#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed time in each direction, keeping order: a slow link between two
processes on one machine (`orthus plan --check` puts one between two stages).

    python3 ops/delay-proxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Prints "delaying 127.0.0.1:LISTEN_PORT -> 127.0.0.1:TARGET_PORT by DELAY_MS ms" once it listens, and exits when its
standard input closes (so it ends with whoever started it, however that ends).
"""
import asyncio
import os
import sys
import threading

listen_port, target_port, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pump(reader, writer):
    """Copies reader to writer, each chunk sent `delay` after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while data := await reader.read(1 << 16):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((None, b""))

    async def write():
        while True:
            due, data = await queue.get()
            if due is None:
                writer.close()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write())


async def connection(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer),
                         return_exceptions=True)


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


async def main():
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server = await asyncio.start_server(connection, "127.0.0.1", listen_port)
    print(f"delaying 127.0.0.1:{listen_port} -> 127.0.0.1:{target_port} by {delay * 1000:g} ms", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
