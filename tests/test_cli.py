"""Operator CLI commands against moto."""

from __future__ import annotations

from click.testing import CliRunner

from chalicelib import queue
from infra.cli import cli


def test_redrive_moves_dead_letters_back_in_order(aws) -> None:
    # GIVEN three messages of one session and one of another in the dead-letter queue
    for n, group in enumerate(["s-1", "s-1", "s-2", "s-1"]):
        queue.enqueue(f'{{"n": {n}}}', group=group, dedup_id=f"e-{n}", queue_url=aws.dead_letter_queue_url)
    # WHEN the operator redrives by stack name
    result = CliRunner().invoke(cli, ["redrive", "--stack", aws.name])
    # THEN all four are back on the delivery queue, each session's in order
    assert result.exit_code == 0, result.output
    assert "Redrove 4 message(s)" in result.output
    assert queue.depth(aws.dead_letter_queue_url) == 0
    bodies = []
    for _ in range(10):
        for message in queue.receive(aws.delivery_queue_url):
            bodies.append((message["Attributes"]["MessageGroupId"], message["Body"]))
            queue.delete(aws.delivery_queue_url, message["ReceiptHandle"])
    assert [b for g, b in bodies if g == "s-1"] == ['{"n": 0}', '{"n": 1}', '{"n": 3}']
    assert [b for g, b in bodies if g == "s-2"] == ['{"n": 2}']
    again = CliRunner().invoke(cli, ["redrive", "--stack", aws.name])
    assert again.exit_code == 0 and "nothing to redrive" in again.output
