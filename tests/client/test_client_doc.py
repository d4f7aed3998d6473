"""docs/client.md's chat bot, run as written against a real server: it cannot rot."""

import asyncio
import sys

from nubo_backend.client import MessageCreated
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.factories import PASSWORD, make_user
from tests.support import ROOT

DOC = ROOT / "docs/client.md"
MARK = "<!-- tests/client/test_client_doc.py runs this block -->"


def bot_source() -> str:
    text = DOC.read_text()
    start = text.index("\n", text.index("```python", text.index(MARK))) + 1
    return text[start:text.index("```", start)]


def test_the_bot_in_the_doc_is_under_40_lines() -> None:
    assert len(bot_source().strip().splitlines()) < 40


async def test_the_docs_chat_bot_answers_a_message_sent_to_it(stores: Stores, server, login, tmp_path) -> None:
    bot_user, alice = await make_user(stores, "bot"), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bot_user.id)
    script = tmp_path / "bot.py"
    script.write_text(bot_source())
    env = {"NUBO_URL": server.url, "NUBO_USER": "bot", "NUBO_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    bot = await asyncio.create_subprocess_exec(sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(bot.stdout.readline(), 20) == b"listening as bot\n"
        client = await login(server, alice)
        async with asyncio.timeout(10):
            await client.realtime.wait_connected()
        replies: list[str] = []
        async with asyncio.timeout(20):
            for text in ("/ping", "Salut"):
                await client.send_message_live(conversation["id"], text)
                async for event in client.events():
                    if isinstance(event, MessageCreated) and event.message.sender_id == bot_user.id:
                        replies.append(event.message.body)
                        break
        assert replies == ["pong", "echo: Salut"]
    finally:
        bot.kill()  # the process this test started, by its pid
        await asyncio.wait_for(bot.wait(), 5)
