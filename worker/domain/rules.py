"""The rules by their R-number, each with the sentence of the procedure it applies (the seed's
Dutch text) or, where the procedure is silent, the interpretation: what `explain` quotes."""

from __future__ import annotations

from typing import NamedTuple


class Rule(NamedTuple):
    title: str
    source: str  # the seed's sentence, or "Interpretation: ..."


RULES: dict[str, Rule] = {
    "eligibility": Rule(
        "eligibility of a request",
        "§ Algemene Voorwaarden: ondernemingsnummer; rekeningnummer in SEPA-formaat; geen "
        "auditbureau zijn; voldoen aan de kmop-norm.",
    ),
    "R1": Rule(
        "a passed audit registers for five years",
        "Bij een geslaagde audit ... VLAIO registreert op basis van dat auditrapport de "
        "dienstverlener voor een periode van 5 jaar ... De registratieperiode gaat in vanaf de "
        "datum van de registratie door VLAIO.",
    ),
    "R2": Rule(
        "no registration without the declaration of honour",
        "In de laatste stap van deze online aanvraag krijg je een 'verklaring op eer'.",
    ),
    "R3": Rule(
        "a conditional audit waits for the minister",
        "De registratieperiode gaat in vanaf de datum van goedkeuring door de minister.",
    ),
    "R4": Rule(
        "a passed follow-up keeps the registration",
        "Indien de opvolgaudit ... aantoont dat de tekortkomingen weggewerkt zijn, dan blijft de "
        "registratie behouden.",
    ),
    "R5": Rule(
        "a failed or missed follow-up stops the registration",
        "Stelt de auditor bij de opvolgaudit vast dat nog niet aan alle vereisten ... voldaan is, "
        "dan wordt de registratie door VLAIO stopgezet. De registratie wordt eveneens stopgezet "
        "indien de dienstverlener niet binnen de gestelde termijn een opvolgaudit laat doorgaan.",
    ),
    "R6": Rule(
        "a failed audit gives six months to react",
        "De dienstverlener heeft een termijn van zes maanden om hierop te reageren naar de "
        "auditinstantie. Bij gebrek aan reactie binnen deze termijn wordt de aanvraag tot "
        "registratie door VLAIO geweigerd.",
    ),
    "R7": Rule(
        "a starter is admitted for two years",
        "Na een positieve beoordeling van de beperkte audit kan een toelating verkregen worden "
        "voor een periode van 2 jaar ... Na de positieve opvolgaudit wordt de oorspronkelijke "
        "einddatum met drie jaar verlengd.",
    ),
    "R8": Rule("a period ends", "VLAIO registreert ... voor een periode van 5 jaar."),
    "R9": Rule(
        "notices ahead of a date",
        "Interpretation: the mailers tell the provider 90 and 30 days before an end date and "
        "30 days before a follow-up or reaction deadline (KMO_NOTICE_OFFSETS).",
    ),
    "R10": Rule(
        "audit authority",
        "Om geregistreerd te worden ... moet de dienstverlener een audit doorlopen bij één van "
        "de aangestelde auditbureaus.",
    ),
    "R11": Rule(
        "a message the rules do not allow changes nothing",
        "Interpretation: answered with message.ignored and a reason; never a change of state.",
    ),
    "R12": Rule("history", "Interpretation: every change of state is kept with its cause."),
    "R13": Rule(
        "the bureau of record",
        "De dienstverlener heeft een termijn van zes maanden om hierop te reageren naar de "
        "auditinstantie.",
    ),
    "R14": Rule(
        "the provider withdraws",
        'Interpretation: the provider manages its registrations in its own tool ("toegang tot '
        'je eigen tool waar je jouw registraties kan beheren"), so it may withdraw a request or '
        "registration; the desk sends that on.",
    ),
    "R15": Rule(
        "VLAIO stops a registration",
        'Voldoen aan de kmop-norm ... Integriteit; "dan wordt de registratie door VLAIO '
        'stopgezet": VLAIO stops a registration that no longer meets the norm.',
    ),
    "R16": Rule(
        "a deadline moves to a later date",
        "De termijn waarbinnen de opvolgaudit dient plaats te vinden staat vermeld in het eerste "
        "auditverslag. Interpretation: VLAIO may move it, or the reaction deadline, to a later "
        "date (after an appeal).",
    ),
    "R17": Rule(
        "a message retracted, the case corrected",
        "Interpretation: a decision taken on a message sent in error is taken again without it; "
        "the registration's life is replayed without the message and the difference applied as "
        "one correction (decision.corrected).",
    ),
    "R18": Rule(
        "timers follow the settings",
        "Interpretation: the notices of R9 follow KMO_NOTICE_OFFSETS as it is now; a changed "
        "setting reaches the pending timers of every live registration.",
    ),
    "R19": Rule(
        "personal data erased",
        "GDPR art. 5(1)(e) and 17. Interpretation: a closed registration's contact e-mail, "
        "IBAN, the requester's national or BIS number and the declaration's signatory are "
        "erased KMO_ERASURE_YEARS after it closed, or at once at the back office's request; "
        "states, dates, decisions and reasons stay.",
    ),
}

# What a pending timer will do when it comes due, for `explain`'s "what comes next".
TIMER_EFFECTS: dict[str, tuple[str, str]] = {
    "deadline.follow_up": ("R5", "stops the registration unless a follow-up audit has passed"),
    "deadline.reaction": ("R6", "refuses the request unless a reaction was received"),
    "deadline.period_end": ("R7/R8", "ends the period: expired"),
    "notice.expiring": ("R9", "tells the provider the period ends"),
    "notice.follow_up_due": ("R9", "tells the provider the follow-up audit is due"),
    "notice.reaction_due": ("R9", "tells the provider the reaction is due"),
    "notice.starter_modules_due": ("R9", "tells the starter the two modules are due"),
}


def describe(rule: str) -> Rule:
    return RULES.get(rule, Rule(rule, ""))
