//! `csv_columns`: one exchange per row, from named columns.

use crate::record::{Message, Role};
use crate::registry::Fields;
use crate::source::{Item, Limits, Reason, finish, quarantine, strip_html};

/// Where a `csv_columns` row keeps its cells: header positions of the configured columns.
pub(super) struct Exchange<'a> {
    pub(super) fields: &'a Fields,
    pub(super) user: Option<usize>,
    pub(super) assistant: Option<usize>,
    pub(super) system: Option<usize>,
    pub(super) group: Option<usize>,
}

impl Exchange<'_> {
    /// One row as one exchange: the system cell if any, the user and assistant cells, and
    /// the group cell when the dataset is grouped.
    pub(super) fn row(
        &self,
        line: u64,
        cells: &[&str],
        limits: &Limits,
        emit: &mut dyn FnMut(Item),
    ) {
        let f = self.fields;
        let mut messages = Vec::with_capacity(3);
        if let Some(Some(s)) = self.system.map(|i| cells.get(i)) {
            messages.push(Message::new(Role::System, strip_html(s)));
        }
        for (idx, role, name) in [
            (self.user, Role::User, f.user.as_deref()),
            (self.assistant, Role::Assistant, f.assistant.as_deref()),
        ] {
            match idx.and_then(|i| cells.get(i)) {
                Some(text) => messages.push(Message::new(role, strip_html(text))),
                None => {
                    emit(quarantine(
                        line,
                        Reason::InvalidCsvRow,
                        format!("the row has no {:?} cell", name.unwrap_or_default()),
                    ));
                    return;
                }
            }
        }
        let group = match self.group.map(|g| cells.get(g).map(|s| s.trim())) {
            None => None,
            Some(Some(g)) if !g.is_empty() => Some(g.to_string()),
            Some(_) => {
                emit(quarantine(
                    line,
                    Reason::MissingField,
                    "the group_by cell is empty",
                ));
                return;
            }
        };
        emit(finish(line, 0, group, messages, limits.merge));
    }
}
