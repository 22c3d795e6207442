"""R52 on the dashboard over real HTTP: per connected number, the APPROVED templates listed
from Aircall (cached, refreshable), the choice of one (or none) and how it is filled, and
the flag on a chosen template that left APPROVED."""

from __future__ import annotations

from harness.pages import number_row, post_form, signed_in, text_of

SUPPORT_FR = 1001


def _section(page: str, number_id: int) -> str:
    return text_of(page, f"templates-{number_id}")


def test_R52_dashboard_lists_chooses_and_flags_the_re_engagement_template(stack) -> None:
    stack.connect(SUPPORT_FR)
    client, page = signed_in(stack)
    support = number_row(stack, SUPPORT_FR)
    assert "No re-engagement template: late replies fail." in _section(page, support)
    assert "reply_waiting" not in page  # nothing listed before the admin asks

    answer = post_form(client, f"/dashboard/numbers/{support}/templates/refresh")
    assert answer.status_code == 303
    page = client.get("/dashboard").text
    assert "Templates refreshed from Aircall: 3 approved." in page
    section = page.split(f'id="templates-{support}"')[1].split("</article>")[0]
    for name in ("reply_waiting · en · utility", "we_answered · fr · utility",
                 "order_update · en · utility"):
        assert name in section
    assert "spring_offer" not in section and "weekly_digest" not in section  # not APPROVED

    # A pending template cannot be chosen, even by a hand-made form.
    post_form(client, f"/dashboard/numbers/{support}/templates", template_id="9104",
              fill="text")
    page = client.get("/dashboard").text
    assert "Only an approved template of this number can be chosen." in page
    assert "No re-engagement template" in _section(page, support)

    post_form(client, f"/dashboard/numbers/{support}/templates", template_id="9101",
              fill="text")
    page = client.get("/dashboard").text
    assert ("Re-engagement template: reply_waiting (en), the agent’s reply as its text."
            in _section(page, support))
    assert '<option value="9101" selected>' in page

    # WhatsApp pauses it; the next refresh flags it.
    stack.aircall.post("/_sandbox/templates/9101", json={"status": "PAUSED"})
    post_form(client, f"/dashboard/numbers/{support}/templates/refresh")
    page = client.get("/dashboard").text
    assert "Unusable: The template is no longer approved on WhatsApp (now paused)." \
        in _section(page, support)

    post_form(client, f"/dashboard/numbers/{support}/templates", template_id="", fill="none")
    assert "No re-engagement template" in _section(client.get("/dashboard").text, support)


def test_R52_template_forms_belong_to_the_signed_in_installation(stack) -> None:
    """R10: another installation's number (or a made-up one) is not found."""
    client, _ = signed_in(stack)
    answer = post_form(client, "/dashboard/numbers/999999/templates", template_id="9101",
                       fill="text")
    assert answer.status_code == 404
    answer = post_form(client, "/dashboard/numbers/999999/templates/refresh")
    assert answer.status_code == 404
