//! `ps`: containers with their current state, filtered as `docker ps --filter` does.

use super::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// One `--filter key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `id=PREFIX`.
    Id(String),
    /// `name=SUBSTRING`.
    Name(String),
    /// `status=created|running|paused|exited|...`.
    Status(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
    /// `exited=CODE`.
    Exited(i32),
    /// `ancestor=IMAGE` (as named at create, or image ID prefix).
    Ancestor(String),
}

impl Filter {
    /// Parses `key=value`.
    pub fn parse(s: &str) -> Result<Filter> {
        let bad = || EngineError::InvalidInput(format!("invalid filter '{s}'"));
        let (k, v) = s.split_once('=').ok_or_else(bad)?;
        Ok(match k {
            "id" => Filter::Id(v.into()),
            "name" => Filter::Name(v.trim_start_matches('/').into()),
            "status" => Filter::Status(v.into()),
            "label" => match v.split_once('=') {
                Some((a, b)) => Filter::Label(a.into(), Some(b.into())),
                None => Filter::Label(v.into(), None),
            },
            "exited" => Filter::Exited(v.parse().map_err(|_| bad())?),
            "ancestor" => Filter::Ancestor(v.into()),
            _ => return Err(EngineError::InvalidInput(format!("invalid filter '{k}'"))),
        })
    }

    fn matches(&self, c: &ContainerRecord) -> bool {
        match self {
            Filter::Id(p) => c.id.starts_with(p.as_str()),
            Filter::Name(n) => c.name.contains(n.as_str()),
            Filter::Status(s) => c.state.status.as_str() == s,
            Filter::Label(k, v) => match (c.options.labels.get(k), v) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                _ => false,
            },
            Filter::Exited(code) => c.state.status == Status::Exited && c.state.exit_code == *code,
            Filter::Ancestor(a) => {
                c.image_name == *a
                    || c.image_id
                        .trim_start_matches("sha256:")
                        .starts_with(a.trim_start_matches("sha256:"))
            }
        }
    }
}

impl Engine {
    /// Containers, newest first: running ones only unless `all`; every filter must match
    /// (filters of the same key are alternatives, as in Docker).
    pub fn list_containers(&self, all: bool, filters: &[Filter]) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for rec in self.containers.list()? {
            let rec = self.sync_state(rec)?;
            if !all
                && !rec.state.status.has_task()
                && !filters
                    .iter()
                    .any(|f| matches!(f, Filter::Status(_) | Filter::Exited(_)))
            {
                continue;
            }
            let keep = group(filters)
                .iter()
                .all(|alts| alts.iter().any(|f| f.matches(&rec)));
            if keep {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// One container, state brought up to date.
    pub fn container(&self, name: &str) -> Result<ContainerRecord> {
        self.sync_state(self.containers.find(name)?)
    }

    /// Renames a container.
    pub fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        super::names::validate(new_name)?;
        let _lock = self.containers.lock()?;
        let mut rec = self.containers.find(name)?;
        if let Some(other) = self
            .containers
            .list()?
            .into_iter()
            .find(|c| c.name == new_name && c.id != rec.id)
        {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let old = std::mem::replace(&mut rec.name, new_name.to_string());
        self.containers.save(&rec)?;
        self.rename_network_member(&rec.id, new_name);
        self.container_event(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}

fn group(filters: &[Filter]) -> Vec<Vec<&Filter>> {
    let mut groups: Vec<Vec<&Filter>> = Vec::new();
    for f in filters {
        let same = groups
            .iter_mut()
            .find(|g| std::mem::discriminant(g[0]) == std::mem::discriminant(f));
        match same {
            Some(g) => g.push(f),
            None => groups.push(vec![f]),
        }
    }
    groups
}
