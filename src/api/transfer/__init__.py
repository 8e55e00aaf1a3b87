"""Export and import a whole store as JSON Lines: how a deployment moves between SQLite and PostgreSQL.

The export is the event store as stored (sealed content stays sealed: nothing is decrypted), in
position order, plus the rows that are not derived from events: projects, key hashes, wrapped data
keys, the cursor secret, upload metadata and idempotency records. Read models are never copied;
the import rebuilds them from the events. Events keep their positions, so an audit consumer's
`after=POSITION` survives the move.

Lines, each one JSON object tagged by `kind`: one `header`, then `event` lines in position order,
then `row` lines table by table, then one `end` line with the counts (a file without it was cut
short, and is refused).
"""

from api.transfer.export import export_store
from api.transfer.format import TransferError
from api.transfer.load import check_master_key_for, import_store, read_header
from api.transfer.progress import Progress, summary

__all__ = [
    "Progress",
    "TransferError",
    "check_master_key_for",
    "export_store",
    "import_store",
    "read_header",
    "summary",
]
