"""The app as tools for AI agents: started with ``--mcp`` (tiny models), reached with the ``mcp`` client package over
Streamable HTTP at /gradio_api/mcp/, as an MCP client such as Claude Desktop or Cursor reaches it."""

from __future__ import annotations

import asyncio
import base64
import re
import urllib.request

import pytest

mcp = pytest.importorskip("mcp", reason="the mcp package (gradio[mcp]) is in requirements.txt")

TOOLS = {"piano_cover", "piano_to_sheet_music", "text_to_music", "melody_to_music", "music_midi", "check_watermark",
         "song"}


@pytest.fixture(scope="module")
def mcp_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, tiny_watermark_dir, tiny_ace_step_dir):
    from tests.live_app import start_app

    app = start_app(tiny_pop2piano_dir, tiny_musicgen_dir, tiny_melody_dir, log_name="mcp-server.log",
                    extra_args=["--mcp", "--separator-model", "off", "--translation-model", "off",
                                "--watermark-model", str(tiny_watermark_dir), "--song-model", str(tiny_ace_step_dir)])
    yield app
    app.stop()


@pytest.fixture(scope="module")
def song_data_url(chorale) -> str:
    """The song as an agent can hand it over here: a data URL (gradio refuses URLs to local addresses)."""
    return "data:audio/wav;base64," + base64.b64encode(chorale[0].read_bytes()).decode()


def with_session(url: str, work):
    """Run ``work(session)`` in an initialised MCP client session on ``url``."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def main():
        async with streamablehttp_client(url, timeout=60, sse_read_timeout=300) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(main())


def urls_in(result) -> list[str]:
    """The file URLs a tool's answer holds (in its text parts)."""
    text = " ".join(getattr(part, "text", "") or "" for part in result.content)
    return re.findall(r"https?://[^\s\"'\]\)]+", text)


def test_the_tools_are_the_jobs_each_described(mcp_app):
    tools = with_session(f"{mcp_app.url.rstrip('/')}/gradio_api/mcp/", lambda s: s.list_tools())
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) == TOOLS  # no Stop, preview, parameters file or session-bound action among them
    for tool in by_name.values():
        assert len(tool.description) > 40, tool.name
        for name, schema in tool.inputSchema["properties"].items():
            assert schema.get("description"), (tool.name, name)  # every argument says what it takes
    assert "seconds" in by_name["text_to_music"].inputSchema["properties"]["duration"]["description"]


def test_a_song_tool_call_returns_the_song_and_its_lyrics(mcp_app):
    async def work(session):
        made = await session.call_tool("song", {"style": "upbeat pop", "lyrics": "[verse]\n月光洒在窗前",
                                                "seconds": 10, "seed": "5"})
        bad = await session.call_tool("song", {"style": "", "lyrics": ""})
        return made, bad

    made, bad = with_session(f"{mcp_app.url.rstrip('/')}/gradio_api/mcp/", work)
    assert not made.isError
    files = urls_in(made)
    wav = next(u for u in files if u.endswith(".wav"))
    assert urllib.request.urlopen(wav, timeout=30).read(4) == b"RIFF"
    lyrics = next(u for u in files if u.endswith("_lyrics.txt"))
    assert "月光洒在窗前" in urllib.request.urlopen(lyrics, timeout=30).read().decode("utf-8")
    assert bad.isError and "Nothing to sing" in " ".join(getattr(p, "text", "") for p in bad.content)


def test_text_to_music_and_a_piano_cover_return_their_files(mcp_app, song_data_url):
    async def work(session):
        music = await session.call_tool("text_to_music", {"prompt": "lo-fi piano", "duration": 1.5, "seed": "3"})
        cover = await session.call_tool("piano_cover", {"song_path": song_data_url, "style": "composer3"})
        bad = await session.call_tool("text_to_music", {"prompt": "", "duration": 1.5})
        return music, cover, bad

    music, cover, bad = with_session(f"{mcp_app.url.rstrip('/')}/gradio_api/mcp/", work)
    assert not music.isError and not cover.isError
    wavs = [u for u in urls_in(music) if u.endswith(".wav")]
    assert wavs and urllib.request.urlopen(wavs[0], timeout=30).read(4) == b"RIFF"
    files = urls_in(cover)
    assert any(u.endswith(".mid") for u in files) and any(u.endswith(".pdf") for u in files)
    assert urllib.request.urlopen(next(u for u in files if u.endswith(".mid")), timeout=30).read(4) == b"MThd"
    assert bad.isError and "describe the music" in " ".join(getattr(p, "text", "") for p in bad.content)


def test_wrong_arguments_get_the_pages_message_and_the_server_goes_on(mcp_app, song_data_url):
    """An agent's mistakes: out of range, missing, not audio, a name the tool does not take. Each answer is an error
    that says what was wrong, as the page says it, and the next good call is served."""
    calls = [
        ("text_to_music", {"prompt": "warm piano", "duration": 9999}, "greater than maximum value 300"),  # gradio's check
        ("text_to_music", {"prompt": "warm piano", "duration": 2, "seed": "seven"}, "seed must be a whole number"),
        ("piano_cover", {"style": "composer3"}, "'song_path' is a required property"),  # the MCP layer's check
        ("piano_cover", {"song_path": "data:text/plain;base64," + base64.b64encode(b"not a song").decode()},
         "could not read"),
        ("piano_cover", {"song_path": song_data_url, "style": "composer99"}, "'composer99' is not one of ['random'"),
        ("piano_to_sheet_music", {"recording_path": "data:audio/wav;base64,"}, "could not read"),
    ]

    async def work(session):
        answers = [await session.call_tool(name, args) for name, args, _ in calls]
        good = await session.call_tool("text_to_music", {"prompt": "lo-fi piano", "duration": 1.5, "seed": "4"})
        return answers, good

    answers, good = with_session(f"{mcp_app.url.rstrip('/')}/gradio_api/mcp/", work)
    for (name, args, expected), answer in zip(calls, answers):
        said = " ".join(getattr(p, "text", "") or "" for p in answer.content)
        assert answer.isError, (name, args, said)
        assert expected in said.lower(), (name, said)
    assert not good.isError and any(u.endswith(".wav") for u in urls_in(good))


def test_one_list_of_tools_for_the_readme_the_help_and_the_server(mcp_app, capsys):
    """MCP_TOOLS is the one list: the server gives exactly those tools, `--help` and docs/OPERATING.md name them, and no
    description points to a page action (a tool call has no session) or promises what the server may not have."""
    from pathlib import Path

    import app
    from ui.tools import MCP_TOOLS

    tools = with_session(f"{mcp_app.url.rstrip('/')}/gradio_api/mcp/", lambda s: s.list_tools()).tools
    assert {tool.name for tool in tools} == set(MCP_TOOLS) == TOOLS
    operating = (Path(__file__).resolve().parents[1] / "docs" / "OPERATING.md").read_text()
    listed = re.search(r"Its seven tools are the jobs: (.*?)\. They are", operating, re.S).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(MCP_TOOLS)
    with pytest.raises(SystemExit):
        app.parse_args(["--help"])
    assert ", ".join(MCP_TOOLS) in " ".join(capsys.readouterr().out.split())
    for tool in tools:
        text = tool.description + " ".join(str(p.get("description", "")) for p in tool.inputSchema["properties"].values())
        assert "/piano_cover_" not in text and "this session" not in text, tool.name
        assert "Every audio file carries" not in text, tool.name
    song = next(t for t in tools if t.name == "piano_cover").inputSchema["properties"]["song_path"]["description"]
    assert "3 s" in song and "5 s" not in song
