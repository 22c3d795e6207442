"""Every HubSpot path the bridge calls, for each API version it speaks (R50).

HubSpot versions its APIs by date since 2026-03 and marks the v3 custom channels legacy
(supported until September 2027). `HUBSPOT_API_VERSION` picks a family here; this is the one
module that knows the version: clients ask `hubspot_paths(version)` for their paths.

Read from HubSpot's published OpenAPI files (`shared/reference/hubspot-openapi/`):
- custom channels: conversations-custom-channels-{2026-03,v3}.json (same schemas in both);
- CRM contacts and tickets, search: crm-{contacts,tickets}-{2026-03,v3}.json (same request
  and answer schemas; tickets are created with their contact association inline,
  `SimplePublicObjectInputForCreate.associations`, in both, so no associations call);
- OAuth: oauth-2026-03.json, oauth-v3.json (token, introspection), oauth-v1.json;
- files: files-{2026-03,v3}.json (upload, signed URL, folders; the media work calls them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

ApiVersion = Literal["2026-03", "v3"]
API_VERSIONS: Final[tuple[ApiVersion, ...]] = ("2026-03", "v3")
DEFAULT_API_VERSION: Final[ApiVersion] = "2026-03"


def path_segment(value: str) -> str:
    """One path segment, escaped: ids and tokens come from outside (query strings, webhooks)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class HubSpotPaths:
    """The paths of one API version. Per-object paths are methods: their ids are escaped."""

    version: ApiVersion
    channels_create: str
    channels_list: str
    _channel_prefix: str
    inboxes: str
    contacts: str
    contacts_search: str
    tickets: str
    tickets_search: str
    oauth_token: str
    oauth_introspect: str
    files_upload: str
    _files_prefix: str
    folders: str
    folders_search: str

    # Custom channels (app level: developer key; below a channel: the portal's token)

    def channel(self, channel_id: str) -> str:
        return f"{self._channel_prefix}/{path_segment(channel_id)}"

    def staging_token(self, channel_id: str, account_token: str) -> str:
        return (f"{self.channel(channel_id)}/channel-account-staging-tokens/"
                f"{path_segment(account_token)}")

    def channel_accounts(self, channel_id: str) -> str:
        return f"{self.channel(channel_id)}/channel-accounts"

    def channel_account(self, channel_id: str, channel_account_id: str) -> str:
        return f"{self.channel_accounts(channel_id)}/{path_segment(channel_account_id)}"

    def messages(self, channel_id: str) -> str:
        return f"{self.channel(channel_id)}/messages"

    def message(self, channel_id: str, message_id: str) -> str:
        return f"{self.messages(channel_id)}/{path_segment(message_id)}"

    # CRM

    def contact(self, contact_id: str) -> str:
        return f"{self.contacts}/{path_segment(contact_id)}"

    def ticket(self, ticket_id: str) -> str:
        return f"{self.tickets}/{path_segment(ticket_id)}"

    # Files (File Manager: the uploaded file's id goes in a FILE attachment)

    def file(self, file_id: str) -> str:
        return f"{self._files_prefix}/{path_segment(file_id)}"

    def file_signed_url(self, file_id: str) -> str:
        return f"{self.file(file_id)}/signed-url"


# The Conversations API (inboxes, threads) has no date-versioned description among HubSpot's
# published files we hold, and only its *custom channels* part is marked legacy: the v3 inbox
# path is the one known to exist, so both versions list inboxes there. [UNK: a 2026-03
# inbox path, likeliest `/conversations/conversations/2026-03/inboxes`; switch here once
# HubSpot publishes it.]
_INBOXES_V3: Final = "/conversations/v3/conversations/inboxes"

def _version_paths(
    version: ApiVersion, *, channels: str, channels_list: str, oauth: str, crm_objects: str,
    files: str,
) -> HubSpotPaths:
    """One version's paths from its prefixes: below each prefix, the same tail in both."""
    return HubSpotPaths(
        version=version, channels_create=channels, channels_list=channels_list,
        _channel_prefix=channels, inboxes=_INBOXES_V3,
        contacts=f"{crm_objects}/contacts", contacts_search=f"{crm_objects}/contacts/search",
        tickets=f"{crm_objects}/tickets", tickets_search=f"{crm_objects}/tickets/search",
        oauth_token=f"{oauth}/token", oauth_introspect=f"{oauth}/token/introspect",
        files_upload=f"{files}/files", _files_prefix=f"{files}/files",
        folders=f"{files}/folders", folders_search=f"{files}/folders/search",
    )


_PATHS: Final[dict[ApiVersion, HubSpotPaths]] = {
    "2026-03": _version_paths(
        "2026-03",
        # The 2026-03 spec spells create and list without a trailing slash; channelId is an
        # int32 in its path (HubSpot's channel ids are numeric in both versions).
        channels="/conversations/custom-channels/2026-03",
        channels_list="/conversations/custom-channels/2026-03",
        oauth="/oauth/2026-03",
        crm_objects="/crm/objects/2026-03",
        files="/files/2026-03",
    ),
    "v3": _version_paths(
        "v3",
        # Create and list: the v3 paths of HubSpot's guide and of every real client
        # (`/conversations/v3/custom-channels`, list with its trailing slash). The v3 OpenAPI
        # file spells them `/conversations/custom-channels/v3`, an artefact of HubSpot's
        # date-versioned spec generator; the per-channel paths agree in both.
        channels="/conversations/v3/custom-channels",
        channels_list="/conversations/v3/custom-channels/",
        # OAuth v3, not v1: v1 (`/oauth/v1/token`, `GET /oauth/v1/access-tokens/{token}`) is
        # deprecated for removal on 16 Feb 2027, before v3 custom channels go (Sept 2027);
        # v3 OAuth has the same shapes as 2026-03.
        oauth="/oauth/v3",
        crm_objects="/crm/v3/objects",
        files="/files/v3",
    ),
}


def hubspot_paths(version: str = DEFAULT_API_VERSION) -> HubSpotPaths:
    """The paths of `version` (`2026-03` or `v3`); anything else is a configuration error."""
    for known, paths in _PATHS.items():
        if known == version:
            return paths
    raise ValueError(
        f"unknown HubSpot API version {version!r}: use one of {', '.join(API_VERSIONS)}"
    )
