from datetime import UTC, datetime

from centricity_contracts import Customer, CustomerType, IdeaSubmission
from centricity_ideas.domain import created_fact, idea_id_for, record_submission

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SUBMISSION = IdeaSubmission(
    reference="CRM-1",
    title="Save my basket",
    tags=["Checkout ", "mobile"],
    author=Customer(customer_id="c-1", customer_type=CustomerType.EXTERNAL),
)


def test_an_idea_id_is_the_same_for_the_same_unit_and_reference() -> None:
    assert idea_id_for("retail", "CRM-1") == idea_id_for("retail", "CRM-1")


def test_an_idea_id_differs_across_units_and_references() -> None:
    ids = {idea_id_for("retail", "CRM-1"), idea_id_for("wholesale", "CRM-1"), idea_id_for("retail", "CRM-2")}
    assert len(ids) == 3


def test_a_unit_and_reference_cannot_collide_by_concatenation() -> None:
    assert idea_id_for("a-b", "c") != idea_id_for("a", "b-c")


def test_a_recorded_submission_belongs_to_the_unit_that_sent_it() -> None:
    record = record_submission(SUBMISSION, businessunit="retail", now=NOW)
    assert record.businessunit == "retail"
    assert record.idea_id == idea_id_for("retail", "CRM-1")
    assert record.tags == ["checkout", "mobile"]
    assert record.created_at == NOW


def test_the_created_fact_has_a_stable_id_and_is_about_the_idea() -> None:
    record = record_submission(SUBMISSION, businessunit="retail", now=NOW)
    first, again = (
        created_fact(record, source="/centricity/ideas"),
        created_fact(record, source="/centricity/ideas"),
    )
    assert first.id == again.id
    assert first.type == "centricity.idea.created.v1"
    assert first.subject == record.idea_id
    assert first.businessunit == "retail"
