"""The rules of ideas: identity, workflow, edits, comments, merges, attestations and campaigns."""

from datetime import UTC, datetime, timedelta

import pytest

from centricity_contracts import Customer, CustomerType, IdeaSubmission
from centricity_contracts.campaigns import CampaignLaunch, CampaignScope
from centricity_contracts.customers import Actor
from centricity_contracts.ideas import (
    AttestationGiving,
    CommentPosting,
    IdeaRevision,
    IdeaStatus,
    IdeaWithdrawal,
    LikelyDuplicate,
    StatusDecision,
)
from centricity_ideas import domain
from centricity_ideas.domain import (
    CampaignClosed,
    CampaignNotAllowed,
    ForeignBusinessUnit,
    Idea,
    IdeaClosed,
    IllegalTransition,
    InvalidMerge,
    NotAParticipant,
    NotDelivered,
    NotTheAuthor,
    ReasonRequired,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STAFF = Actor(actor_id="pm-1")
AUTHOR = Customer(customer_id="c-1", customer_type=CustomerType.EXTERNAL)
SUBMISSION = IdeaSubmission(
    reference="CRM-1", title="Save my basket", tags=["Checkout ", "mobile"], author=AUTHOR
)


def idea(reference: str = "CRM-1", unit: str = "retail") -> Idea:
    return domain.new_idea(
        SUBMISSION.model_copy(update={"reference": reference}),
        businessunit=unit,
        now=NOW,
        likely_duplicates=[],
    )


def move(
    current: Idea, status: IdeaStatus, *, reason: str | None = None, unit: str = "retail", after_h: int = 1
) -> Idea:
    decision = StatusDecision(idea_id=current.idea_id, status=status, reason=reason, by=STAFF)
    changed, _ = domain.change_status(
        current, decision, businessunit=unit, now=NOW + timedelta(hours=after_h)
    )
    return changed


def delivered() -> Idea:
    return move(idea(), IdeaStatus.DELIVERED)


class TestIdentity:
    def test_an_idea_id_is_the_same_for_the_same_unit_and_reference(self) -> None:
        assert domain.idea_id_for("retail", "CRM-1") == domain.idea_id_for("retail", "CRM-1")

    def test_an_idea_id_differs_across_units_and_references(self) -> None:
        ids = {
            domain.idea_id_for(u, r)
            for u, r in [("retail", "CRM-1"), ("wholesale", "CRM-1"), ("retail", "CRM-2")]
        }
        assert len(ids) == 3

    def test_a_unit_and_reference_cannot_collide_by_concatenation(self) -> None:
        assert domain.idea_id_for("a-b", "c") != domain.idea_id_for("a", "b-c")

    def test_a_new_idea_is_submitted_in_its_unit_with_normalised_tags(self) -> None:
        new = idea()
        assert (new.businessunit, new.status, new.tags) == (
            "retail",
            IdeaStatus.SUBMITTED,
            ["checkout", "mobile"],
        )

    def test_the_created_fact_has_a_stable_id(self) -> None:
        first = domain.created_fact(idea(), source="/centricity/ideas")
        assert first.id == domain.created_fact(idea(), source="/centricity/ideas").id
        assert (first.type, first.subject) == ("centricity.idea.created.v1", idea().idea_id)


class TestWorkflow:
    def test_the_main_line_goes_forward_step_by_step(self) -> None:
        current = idea()
        for status in domain.MAIN_LINE[1:]:
            current = move(current, status)
        assert current.status is IdeaStatus.DELIVERED
        assert [e.to_status for e in current.status_history] == list(domain.MAIN_LINE[1:])

    def test_a_step_may_be_skipped_forward(self) -> None:
        assert move(idea(), IdeaStatus.PLANNED).status is IdeaStatus.PLANNED

    def test_going_back_is_refused_with_the_allowed_statuses(self) -> None:
        planned = move(idea(), IdeaStatus.PLANNED)
        with pytest.raises(
            IllegalTransition, match="from planned to under_review; allowed: in_progress, delivered"
        ):
            move(planned, IdeaStatus.UNDER_REVIEW)

    def test_a_closed_idea_cannot_move(self) -> None:
        with pytest.raises(IllegalTransition, match="none: it is closed"):
            move(delivered(), IdeaStatus.DECLINED, reason="late")

    def test_declining_needs_a_reason(self) -> None:
        with pytest.raises(ReasonRequired):
            move(idea(), IdeaStatus.DECLINED, reason="  ")
        assert move(idea(), IdeaStatus.DECLINED, reason="Not legal here").status is IdeaStatus.DECLINED

    def test_duplicate_is_reached_only_by_merging(self) -> None:
        with pytest.raises(IllegalTransition, match="merging"):
            move(idea(), IdeaStatus.DUPLICATE)

    def test_only_the_ideas_unit_may_move_it(self) -> None:
        with pytest.raises(ForeignBusinessUnit):
            move(idea(), IdeaStatus.PLANNED, unit="wholesale")

    def test_the_first_response_time_is_kept_from_the_first_change_only(self) -> None:
        reviewed = move(idea(), IdeaStatus.UNDER_REVIEW, after_h=3)
        planned = move(reviewed, IdeaStatus.PLANNED, after_h=50)
        assert reviewed.first_response_seconds == 3 * 3600
        assert planned.first_response_seconds == 3 * 3600
        decision = StatusDecision(idea_id=reviewed.idea_id, status=IdeaStatus.PLANNED, by=STAFF)
        _, fact = domain.change_status(reviewed, decision, businessunit="retail", now=NOW)
        assert fact.first_response_seconds is None


class TestEdits:
    def test_an_edit_keeps_what_each_field_was(self) -> None:
        revision = IdeaRevision(idea_id="x", title="Save my basket across devices", by=STAFF)
        edited, fact = domain.edit(idea(), revision, businessunit="retail", now=NOW)
        assert edited.title == "Save my basket across devices"
        assert fact is not None
        assert fact.changes == {
            "title": {"before": "Save my basket", "after": "Save my basket across devices"}
        }
        assert edited.edits[0].changes == fact.changes

    def test_an_edit_that_changes_nothing_records_nothing(self) -> None:
        same, fact = domain.edit(
            idea(),
            IdeaRevision(idea_id="x", title="Save my basket", by=STAFF),
            businessunit="retail",
            now=NOW,
        )
        assert fact is None
        assert same.edits == []

    def test_another_unit_cannot_edit(self) -> None:
        with pytest.raises(ForeignBusinessUnit):
            domain.edit(
                idea(),
                IdeaRevision(idea_id="x", title="Mine now", by=STAFF),
                businessunit="wholesale",
                now=NOW,
            )

    def test_a_closed_idea_cannot_be_edited(self) -> None:
        with pytest.raises(IdeaClosed):
            domain.edit(
                delivered(),
                IdeaRevision(idea_id="x", title="Later", by=STAFF),
                businessunit="retail",
                now=NOW,
            )


class TestComments:
    def test_any_unit_may_comment_and_the_count_grows(self) -> None:
        posting = CommentPosting(idea_id="x", body="+1 from us", author=AUTHOR)
        commented, comment = domain.add_comment(
            idea(), posting, businessunit="wholesale", comment_id="c1", now=NOW
        )
        assert (commented.comment_count, comment.businessunit, comment.official) == (1, "wholesale", False)

    def test_only_the_ideas_own_staff_respond_officially(self) -> None:
        posting = CommentPosting(idea_id="x", body="We will do it", staff=STAFF, official=True)
        with pytest.raises(ForeignBusinessUnit):
            domain.add_comment(idea(), posting, businessunit="wholesale", comment_id="c1", now=NOW)

    def test_customers_cannot_respond_officially(self) -> None:
        with pytest.raises(ValueError, match="only staff"):
            CommentPosting(idea_id="x", body="Official!", author=AUTHOR, official=True)


class TestMerging:
    def test_a_merge_closes_the_duplicate_and_links_both(self) -> None:
        a, b = idea("A"), idea("B")
        closed, fact = domain.merge(a, b, businessunit="retail", by=STAFF, now=NOW)
        assert (closed.status, closed.duplicate_of) == (IdeaStatus.DUPLICATE, b.idea_id)
        assert (fact.idea_id, fact.into_idea_id) == (a.idea_id, b.idea_id)
        linked = domain.absorb(b, a.idea_id, now=NOW)
        assert linked is not None
        assert linked.merged_from == [a.idea_id]
        assert domain.absorb(linked, a.idea_id, now=NOW) is None

    def test_the_surviving_idea_no_longer_lists_a_merged_twin_as_likely_duplicate(self) -> None:
        a, b = idea("A"), idea("B")
        twin = LikelyDuplicate(idea_id=a.idea_id, businessunit="retail", title="A", similarity=0.97)
        other = LikelyDuplicate(idea_id="other", businessunit="retail", title="Other", similarity=0.6)
        b = b.model_copy(update={"likely_duplicates": [twin, other]})
        linked = domain.absorb(b, a.idea_id, now=NOW)
        assert linked is not None
        assert [d.idea_id for d in linked.likely_duplicates] == ["other"]

    @pytest.mark.parametrize("case", ["itself", "closed", "into-duplicate"])
    def test_invalid_merges_are_refused(self, case: str) -> None:
        a, b = idea("A"), idea("B")
        if case == "itself":
            b = a
        elif case == "closed":
            a = move(a, IdeaStatus.DELIVERED)
        else:
            b, _ = domain.merge(b, idea("C"), businessunit="retail", by=STAFF, now=NOW)
        with pytest.raises(InvalidMerge):
            domain.merge(a, b, businessunit="retail", by=STAFF, now=NOW)


class TestAttestations:
    def giving(self, helped: bool = True, customer: Customer = AUTHOR) -> AttestationGiving:
        return AttestationGiving(idea_id="x", customer=customer, helped=helped)

    def test_only_a_delivered_idea_can_be_attested(self) -> None:
        with pytest.raises(NotDelivered):
            domain.attest(idea(), self.giving(), businessunit="retail", voted=False, now=NOW)

    def test_the_author_and_voters_may_attest_others_may_not(self) -> None:
        voter = Customer(customer_id="w-7", customer_type=CustomerType.INTERNAL)
        by_author, _ = domain.attest(delivered(), self.giving(), businessunit="retail", voted=False, now=NOW)
        by_voter, _ = domain.attest(
            by_author, self.giving(False, voter), businessunit="wholesale", voted=True, now=NOW
        )
        assert (by_voter.helped_count, by_voter.did_not_help_count) == (1, 1)
        with pytest.raises(NotAParticipant):
            domain.attest(
                delivered(), self.giving(customer=voter), businessunit="wholesale", voted=False, now=NOW
            )

    def test_one_attestation_per_customer_which_can_change(self) -> None:
        first, _ = domain.attest(delivered(), self.giving(True), businessunit="retail", voted=False, now=NOW)
        same, repeat = domain.attest(first, self.giving(True), businessunit="retail", voted=False, now=NOW)
        changed, fact = domain.attest(first, self.giving(False), businessunit="retail", voted=False, now=NOW)
        assert repeat is None
        assert same == first
        assert (changed.helped_count, changed.did_not_help_count) == (0, 1)
        assert fact is not None
        assert fact.previous_helped is True


class TestCampaigns:
    def launch(self, scope: CampaignScope = CampaignScope.BUSINESSUNIT) -> CampaignLaunch:
        return CampaignLaunch(
            reference="Q1",
            title="Cut onboarding time",
            scope=scope,
            opens_at=NOW,
            closes_at=NOW + timedelta(days=30),
        )

    def test_a_campaign_takes_ideas_only_while_open(self) -> None:
        campaign = domain.launch_campaign(
            self.launch(), businessunit="retail", may_launch_enterprise=False, now=NOW
        )
        domain.check_campaign_accepts(campaign, businessunit="retail", now=NOW + timedelta(days=1))
        for when in (NOW - timedelta(seconds=1), NOW + timedelta(days=30)):
            with pytest.raises(CampaignClosed):
                domain.check_campaign_accepts(campaign, businessunit="retail", now=when)

    def test_a_unit_campaign_takes_only_its_units_ideas_an_enterprise_one_takes_all(self) -> None:
        unit = domain.launch_campaign(
            self.launch(), businessunit="retail", may_launch_enterprise=False, now=NOW
        )
        with pytest.raises(CampaignNotAllowed):
            domain.check_campaign_accepts(unit, businessunit="wholesale", now=NOW)
        everyone = domain.launch_campaign(
            self.launch(CampaignScope.ENTERPRISE), businessunit="hq", may_launch_enterprise=True, now=NOW
        )
        domain.check_campaign_accepts(everyone, businessunit="wholesale", now=NOW)

    def test_only_enterprise_units_launch_enterprise_campaigns(self) -> None:
        with pytest.raises(CampaignNotAllowed):
            domain.launch_campaign(
                self.launch(CampaignScope.ENTERPRISE),
                businessunit="retail",
                may_launch_enterprise=False,
                now=NOW,
            )

    def test_a_window_must_close_after_it_opens(self) -> None:
        with pytest.raises(ValueError, match="closes_at"):
            CampaignLaunch(reference="Q1", title="Backwards", opens_at=NOW, closes_at=NOW)


class TestWithdrawal:
    def withdrawal(self, author: Customer | None = None) -> IdeaWithdrawal:
        return IdeaWithdrawal(idea_id="x", reason="Solved another way", by=STAFF, author=author)

    def test_the_author_or_the_unit_withdraws_an_open_idea_for_good(self) -> None:
        for author in (AUTHOR, None):
            withdrawn, change = domain.withdraw(
                idea(), self.withdrawal(author), businessunit="retail", now=NOW + timedelta(hours=1)
            )
            assert (withdrawn.status, change.to_status) == (IdeaStatus.WITHDRAWN, IdeaStatus.WITHDRAWN)
            assert withdrawn.status_history[-1].reason == "Solved another way"
            # A withdrawal is not the unit's answer: the first-response clock keeps running.
            assert (withdrawn.first_response_at, change.first_response_seconds) == (None, None)
            assert domain.allowed_next(withdrawn.status) == []

    def test_only_its_author_and_its_own_unit_may_and_only_while_it_is_open(self) -> None:
        other = Customer(customer_id="c-2", customer_type=CustomerType.EXTERNAL)
        with pytest.raises(NotTheAuthor):
            domain.withdraw(idea(), self.withdrawal(other), businessunit="retail", now=NOW)
        with pytest.raises(ForeignBusinessUnit):
            domain.withdraw(idea(), self.withdrawal(), businessunit="wholesale", now=NOW)
        with pytest.raises(IllegalTransition):
            domain.withdraw(delivered(), self.withdrawal(), businessunit="retail", now=NOW)

    def test_a_status_decision_cannot_withdraw(self) -> None:
        with pytest.raises(IllegalTransition, match="withdrawal"):
            move(idea(), IdeaStatus.WITHDRAWN)


class TestFollowUp:
    POLICY = domain.FollowUpPolicy(min_answers=3, not_helped_share=0.5, not_helped_count=4)

    def answered(self, *helped: bool) -> Idea:
        current = delivered()
        for n, answer in enumerate(helped):
            giving = AttestationGiving(
                idea_id=current.idea_id,
                customer=Customer(customer_id=f"v-{n}", customer_type=CustomerType.EXTERNAL),
                helped=answer,
            )
            current, _ = domain.attest(current, giving, businessunit="wholesale", voted=True, now=NOW)
        return current

    def test_too_few_answers_or_too_small_a_share_need_no_follow_up(self) -> None:
        assert domain.follow_up(self.answered(False, False), self.POLICY, now=NOW) is None
        assert domain.follow_up(self.answered(False, True, True), self.POLICY, now=NOW) is None

    def test_a_share_over_the_threshold_flags_the_idea_once(self) -> None:
        flagged = domain.follow_up(self.answered(False, False, True), self.POLICY, now=NOW)
        assert flagged is not None
        idea_now, fact = flagged
        assert idea_now.follow_up_needed_at == NOW
        assert (fact.attested, fact.not_helped) == (3, 2)
        assert fact.not_helped_share == pytest.approx(0.666667)
        assert "at least 3 answers" in fact.threshold
        assert domain.follow_up(idea_now, self.POLICY, now=NOW) is None, "flagged already"

    def test_enough_that_did_not_help_flag_it_whatever_the_share(self) -> None:
        answers = [False] * 4 + [True] * 10
        assert domain.follow_up(self.answered(*answers), self.POLICY, now=NOW) is not None

    def test_only_a_follow_up_reopens_a_delivered_idea(self) -> None:
        with pytest.raises(domain.IllegalTransition):
            move(delivered(), IdeaStatus.IN_PROGRESS)
        flagged = domain.follow_up(self.answered(False, False, False), self.POLICY, now=NOW)
        assert flagged is not None
        reopened = move(flagged[0], IdeaStatus.IN_PROGRESS, after_h=3)
        assert reopened.status is IdeaStatus.IN_PROGRESS
        assert reopened.follow_up_needed_at is None
        assert domain.allowed_next(IdeaStatus.DELIVERED, follow_up_needed=True) == [IdeaStatus.IN_PROGRESS]
