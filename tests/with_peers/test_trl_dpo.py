"""Our DPO against TRL's own DPOTrainer on the same batch: TRL tokenizes and collates the pairs, its
trainer computes its loss, and ours reads the same tensors; the losses and every parameter's gradient
agree. Runs where TRL 1.16 is installed (``nox -s test-peers``); skipped in ``nox -s tests``."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from conftest import math_words_pairs

from harness.config import IGNORE_INDEX
from harness.fused_loss import fused_causal_lm_loss
from harness.losses import Objective, causal_lm_loss
from harness.models import load_model, load_tokenizer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("trl") is None, reason="needs TRL 1.16: nox -s test-peers"
)


def assert_same_gradient(ours: torch.Tensor, theirs: torch.Tensor, name: str) -> None:
    """Equal to float32 round-off: the two sum the same terms in other orders (TRL's fused LM head,
    our chunks), 4e-6 seen on an embedding gradient whose largest entry is 5.6."""
    scale = theirs.abs().max().item()
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * scale, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_our_dpo_is_trls_on_the_same_batch(tmp_path, beta):
    import datasets
    import trl

    assert trl.__version__ == "1.16.0"
    torch.manual_seed(0)
    tokenizer = load_tokenizer("tiny")
    model = load_model("tiny")
    start = copy.deepcopy(model)
    # Move the model off its start, so the margins (and the loss) are not ln 2 trivially.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    args = trl.DPOConfig(
        output_dir=str(tmp_path),
        beta=beta,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        dataloader_num_workers=0,
        gradient_checkpointing=False,
    )
    trainer = trl.DPOTrainer(
        model=model,
        ref_model=start,
        args=args,
        train_dataset=datasets.Dataset.from_list(math_words_pairs(4)),
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    trainer.model.train()
    theirs = trainer.compute_loss(trainer.model, batch)
    theirs.backward()
    their_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    # The same tensors, our way: the batch is [chosen rows; rejected rows], our pair k is sequences
    # 2k (chosen) and 2k + 1 (rejected); labels are the completion tokens, as TRL's.
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    labels = input_ids.masked_fill(batch["completion_mask"] == 0, IGNORE_INDEX)
    half = input_ids.size(0) // 2
    order = torch.arange(input_ids.size(0))
    sequence_of_row = torch.where(order < half, 2 * order, 2 * (order - half) + 1)
    sequence_ids = torch.where(attention_mask.bool(), sequence_of_row.unsqueeze(1), -1)
    objective = Objective("dpo", dpo_beta=beta)
    with torch.no_grad():
        start_logits = start(input_ids=input_ids, attention_mask=attention_mask).logits
    ours = causal_lm_loss(
        model(input_ids=input_ids, attention_mask=attention_mask).logits,
        labels,
        objective,
        reference_logits=start_logits,
        sequence_ids=sequence_ids,
        num_sequences=input_ids.size(0),
    )
    ours.backward()
    our_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    assert abs(theirs.item() - ours.item()) < 1e-5 and abs(ours.item() - 0.6931) > 1e-3
    assert their_grads.keys() == our_grads.keys()
    for name, grad in our_grads.items():
        assert_same_gradient(grad, their_grads[name], name)
    # And the fused path the trainer runs, on the same tensors.
    with torch.no_grad():
        start_hidden = start.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    fused = fused_causal_lm_loss(
        hidden,
        model.get_output_embeddings().weight,
        labels,
        objective,
        chunk_size=16,
        reference=(start_hidden, start.get_output_embeddings().weight),
        sequence_ids=sequence_ids,
        num_sequences=input_ids.size(0),
    )
    fused.backward()
    assert abs(fused.item() - theirs.item()) < 1e-5
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            assert torch.allclose(parameter.grad, their_grads[name], rtol=1e-4, atol=1e-6), name
