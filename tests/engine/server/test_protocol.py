"""Request bodies as clients send them: the thinking each field asks for, and the 400 each bad field earns."""
from __future__ import annotations

import pytest

from engine import ThinkingRequest
from engine.server.protocol import (ApiError, chat_request, completion_request, embedding_inputs,
                                    thinking_of)

USER = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("body, budget", [
    ({"reasoning_effort": "none"}, 0), ({"reasoning_effort": "low"}, 256), ({"reasoning_effort": "medium"}, 1024),
    ({"reasoning_effort": "high"}, 4096), ({"thinking_budget_tokens": 77}, 77),
    ({"chat_template_kwargs": {"enable_thinking": False}}, 0), ({"chat_template_kwargs": {"enable_thinking": True}},
                                                               None),
    ({"ponder": {"budget": "auto"}}, None), ({"ponder": {"budget": 12}}, 12),
    # the most specific field wins
    ({"ponder": {"budget": 5}, "thinking_budget_tokens": 9, "reasoning_effort": "high"}, 5),
    ({"thinking_budget_tokens": 9, "reasoning_effort": "high"}, 9),
    ({"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": False}}, 256),
])
def test_each_reasoning_field_maps_onto_a_budget(body, budget):
    assert thinking_of(body).request == ThinkingRequest(budget)


def test_no_reasoning_field_leaves_it_to_the_model_and_min_think_and_collection_are_read():
    assert thinking_of({}).request is None
    ask = thinking_of({"ponder": {"budget": 64, "min_think": 16, "collection": "atlas"}})
    assert ask.request == ThinkingRequest(64, 16) and ask.collection == "atlas"


@pytest.mark.parametrize("body, param", [
    ({"messages": "hi"}, "messages"), ({}, "messages"), ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, "messages"),
    ({"messages": USER, "max_tokens": "5"}, "max_tokens"), ({"messages": USER, "max_tokens": 0}, "max_tokens"),
    ({"messages": USER, "max_tokens": True}, "max_tokens"), ({"messages": USER, "temperature": 3}, "temperature"),
    ({"messages": USER, "temperature": "hot"}, "temperature"), ({"messages": USER, "stream": "yes"}, "stream"),
    ({"messages": USER, "stop": [1]}, "stop"), ({"messages": USER, "n": 2}, "n"),
    ({"messages": USER, "model": 7}, "model"), ({"messages": USER, "reasoning_effort": "max"}, "reasoning_effort"),
    ({"messages": USER, "thinking_budget_tokens": -1}, "thinking_budget_tokens"),
    ({"messages": USER, "ponder": {"budget": "lots"}}, "ponder.budget"),
    ({"messages": USER, "ponder": {"budget": -3}}, "ponder.budget"),
    ({"messages": USER, "ponder": {"min_think": "x"}}, "min_think"),
    ({"messages": USER, "chat_template_kwargs": {"enable_thinking": "yes"}}, "enable_thinking"),
    ({"messages": USER, "logprobs": True}, "logprobs"), ({"messages": USER, "top_p": float("nan")}, "top_p"),
    ({"messages": USER * 10_001}, "messages"),  # no context holds them; millions would sit in memory
])
def test_bad_chat_fields_are_400s_naming_the_field(body, param):
    with pytest.raises(ApiError) as caught:
        chat_request(body)
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.body()["error"]["type"] == "invalid_request_error"


def test_a_body_that_is_not_an_object_is_a_400():
    for body in ([], "x", 3, None):
        with pytest.raises(ApiError) as caught:
            chat_request(body)
        assert caught.value.status == 400


def test_chat_fields_are_read():
    ask = chat_request({"model": "m", "messages": [{"role": "developer", "content": "Be brief."},
                                                   {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                        "stream": True, "max_completion_tokens": 9, "temperature": 0, "seed": 3, "stop": "\n",
                        "stream_options": {"include_usage": True},
                        "chat_template_kwargs": {"enable_thinking": False, "custom": 1}})
    assert [t.role for t in ask.messages] == ["system", "user"] and ask.messages[1].content == "Hi"
    assert ask.stream and ask.include_usage and ask.max_tokens == 9 and ask.stop == ("\n",)
    assert ask.sampling.temperature == 0 and ask.sampling.seed == 3
    assert ask.thinking.request == ThinkingRequest(0) and ask.template_kwargs == (("custom", 1),)


def test_completions_and_embeddings_bodies():
    assert completion_request({"prompt": ["Once"]}).prompt == "Once"
    assert completion_request({"prompt": "Once"}).max_tokens == 16  # OpenAI's default
    for body, param in (({}, "prompt"), ({"prompt": [1, 2]}, "prompt"), ({"prompt": "x", "echo": True}, "echo")):
        with pytest.raises(ApiError) as caught:
            completion_request(body)
        assert caught.value.param == param
    assert embedding_inputs({"input": "a"}) == (None, ["a"], "float")
    assert embedding_inputs({"input": ["a", "b"], "model": "e", "encoding_format": "base64"})[2] == "base64"
    for body in ({}, {"input": []}, {"input": [[1, 2]]}, {"input": "a", "encoding_format": "int8"},
                 {"input": ["a"] * 2049}):
        with pytest.raises(ApiError):
            embedding_inputs(body)
