r"""The paper's evaluation prompts: how a math question becomes the text a model continues.

``chat`` (the default) renders the task's own conversation (its question and instruction) with the
backbone's chat template. The others are the raw prompt templates of the Qwen2.5-Math evaluation
that the DFT paper evaluated with (its ``PROMPT_TYPE``: ``qwen-boxed`` for Qwen models,
``llama-base-boxed`` for LLaMA base models, ``deepseek-math`` for DeepSeekMath), written out here
as that evaluation's ``utils.py`` builds them (``llama-base-boxed`` is the DFT repository's
addition): the question goes in place of ``{input}``, and the text is given to the model as it is,
no chat template applied. A raw template applies to math tasks (their examples hold the bare
``question``); a training row made with one is the prompt text and the solution, ended by the
tokenizer's end-of-sequence token.

>>> print(render("deepseek-math", "What is $1 + 1$?"))
User: What is $1 + 1$?
Please reason step by step, and put your final answer within \boxed{}.
<BLANKLINE>
Assistant:
>>> import tasks
>>> example = tasks.get("math-words").load("test", limit=1)[0]
>>> row = with_template(tasks.get("math-words"), example, "qwen-boxed")
>>> row["prompt"].startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
True
"""

from __future__ import annotations

from typing import Any

STEP_BY_STEP = "Please reason step by step, and put your final answer within \\boxed{}."
CHAT = "chat"
TEMPLATES = {
    "qwen-boxed": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n{input}\n" + STEP_BY_STEP + "<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "llama-base-boxed": (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|end_of_text|>\n"
        "<|start_header_id|>user<|end_header_id|>\n\n{input}\n" + STEP_BY_STEP + "<|end_of_text|>\n"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "deepseek-math": "User: {input}\n" + STEP_BY_STEP + "\n\nAssistant:",
}
NAMES = (CHAT, *TEMPLATES)


def render(template: str, question: str) -> str:
    """The prompt text of ``question`` under the raw ``template``."""
    return TEMPLATES[template].replace("{input}", question)


def check_applies(task, template: str) -> None:
    """A ValueError unless ``template`` can render ``task``'s examples (every task can use ``chat``;
    the raw templates need a math task's bare question)."""
    if template not in NAMES:
        raise ValueError(f"unknown prompt template {template!r}; known: {', '.join(NAMES)}")
    if template != CHAT and task.domain != "math":
        raise ValueError(
            f"prompt template {template} is for math questions; task {task.name} is {task.domain} "
            "(use the chat template)"
        )


def with_template(task, example: dict[str, Any], template: str = CHAT) -> dict[str, Any]:
    """``task.messages(example)`` under ``template``: the conversation itself for ``chat``, else the
    raw prompt text and the completion's text."""
    messages = task.messages(example)
    if template == CHAT:
        return messages
    check_applies(task, template)
    completion = messages["completion"]
    text = completion if isinstance(completion, str) else "".join(m["content"] for m in completion)
    return {"prompt": render(template, example["question"]), "completion": text}
