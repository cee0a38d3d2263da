"""How a business unit's system posts intake events: keys, the signature header, and the ids it
may compute itself. Rendered at the top of EVENTS.md, so the contract needs no other document."""

from __future__ import annotations

from centricity_contracts.ids import IDS_DOC
from centricity_contracts.topics import IDEAS_INTAKE, VOTES_INTAKE, dead_letter_topic

SIGNATURE_HEADER = "centricity-signature"

POSTING_DOC = f"""## Posting intake events

Any Kafka client in any language can post. Each record's value is one CloudEvent 1.0 in
structured JSON mode (UTF-8), with the extension attribute `businessunit`; the record's header
`content-type` may say `application/cloudevents+json`.

- **Topics.** Ideas, comments, merges, attestations, withdrawals and campaigns go to
  `{IDEAS_INTAKE}`, keyed by the unit's reference (or the idea id); votes and withdrawals of
  votes go to `{VOTES_INTAKE}`, keyed by idea id, so that one idea's votes keep their order;
  customer values go there too, keyed by customer id.
- **Idempotency.** `source` + `id` identify an event: sending the same pair again changes nothing.
- **Strict input.** A field the event's schema does not know is refused, as is any other invalid
  event: the record goes, unchanged, to `<topic>.dlq` (`{dead_letter_topic(IDEAS_INTAKE)}`,
  `{dead_letter_topic(VOTES_INTAKE)}`) with the reason in its `dlq-reason` header and a stable
  code in `dlq-code` (`not-json`, `invalid-event`, `unknown-businessunit`, `unauthorised`, or the
  rule broken, such as `idea-closed`).
- **Signature.** Kafka does not say who produced a record, so each event proves its unit with the
  header `{SIGNATURE_HEADER}: sha256=<hex>`, where `<hex>` is the lowercase hexadecimal
  HMAC-SHA256 of the exact record value (its bytes, as sent), keyed with the unit's API key (its
  UTF-8 bytes). Deployments and `make run` require it; an event without it, or with a wrong one, is
  dead-lettered as `unauthorised`. With openssl:
  `printf '%s' "$EVENT" | openssl dgst -sha256 -hmac "$API_KEY" -r | cut -d' ' -f1`.
- **The local broker.** Under `make run` the broker is Tansu, which librdkafka 2.0 (Debian's
  `kcat`) cannot talk to ("ApiVersionRequest failed ... Read underflow"); a newer librdkafka, such
  as the one inside the `confluent-kafka` wheel, can (`LD_LIBRARY_PATH`, as the README shows).
  Apache Kafka in deployments takes either.
- **Facts and snapshots** are read from `ideas.events.v1`, `votes.events.v1` (keyed by idea id),
  `insights.ideas.v1` and `insights.units.v1` (compacted, latest value per key). A reader ignores
  fields and types it does not know: facts may gain optional fields and new types.
- **Who caused a fact.** Every fact carries four extension attributes for audit: `principal`
  (who asked: `staff:<subject>` or `customer:<subject>` signed in, `system:<unit>` for a unit's
  API key or its signed intake), `origin` (`http` or `kafka`), `causationid` (the HTTP request's
  `X-Request-ID`, or the intake event's `source` and `id`, with a space between) and
  `traceparent` (the W3C trace context, as the CloudEvents distributed-tracing extension has it).
  A fact a service made because of another's carries that fact's principal. Facts published
  before these attributes existed lack them; a reader must not require them.

{IDS_DOC}"""
