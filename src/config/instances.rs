//! Replica expansion: the instances a declared process runs as, `web`, or `web.0`,
//! `web.1`… with `{replica}` substituted and a log file of each one's own.
//!
//! Pure and on config types only. The supervisor's core (which instances exist) and its
//! reload planner (which instances a new file adds, removes or changes) both read instances
//! from here, so neither imports the other for it. Nothing here knows about runs.

use std::collections::HashMap;
use std::sync::Arc;

use super::spec::{CommandSpec, ProbeSpec, ProbeTarget, ProcessSpec, Spec};

/// One instance of a declared process.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// `web`, or `web.0`… with replicas.
    pub name: String,
    /// Its index, when the process is replicated (always, once scaled at runtime).
    pub replica: Option<u32>,
    /// The declared spec with `{replica}` substituted; a single instance shares the
    /// declaration itself. Its `name` is the declared process's.
    pub spec: Arc<ProcessSpec>,
}

impl Spec {
    /// Every instance the config declares, in declaration order.
    pub fn instances(&self) -> impl Iterator<Item = InstanceSpec> + '_ {
        self.processes.values().flat_map(|p| instances_of(p, None))
    }

    /// [`Spec::instances`], with the replica counts set at runtime (`warden scale`) that
    /// this config leaves in force, by process name.
    pub fn instances_scaled<'a>(
        &'a self,
        scaled: &'a HashMap<String, u32>,
    ) -> impl Iterator<Item = InstanceSpec> + 'a {
        self.processes
            .values()
            .flat_map(|p| instances_of(p, scaled.get(&p.name).copied()))
    }
}

/// The instances of a declared process, or of one scaled at runtime to `scaled` replicas
/// (always indexed, even one: see the core's `scale.rs`).
pub fn instances_of(p: &Arc<ProcessSpec>, scaled: Option<u32>) -> Vec<InstanceSpec> {
    match scaled {
        None if p.replicas <= 1 => vec![replica_of(p, None)],
        None => (0..p.replicas).map(|r| replica_of(p, Some(r))).collect(),
        Some(n) => (0..n).map(|r| replica_of(p, Some(r))).collect(),
    }
}

/// One instance of `p`: the process itself (`None`), or replica `r`.
pub fn replica_of(p: &Arc<ProcessSpec>, r: Option<u32>) -> InstanceSpec {
    match r {
        None => InstanceSpec {
            name: p.name.clone(),
            replica: None,
            spec: p.clone(),
        },
        Some(r) => InstanceSpec {
            name: format!("{}.{r}", p.name),
            replica: Some(r),
            spec: Arc::new(substitute_replica(p, r)),
        },
    }
}

fn substitute_replica(p: &ProcessSpec, r: u32) -> ProcessSpec {
    let sub = |s: &str| s.replace("{replica}", &r.to_string());
    let mut out = p.clone();
    out.command = match &p.command {
        CommandSpec::Argv(a) => CommandSpec::Argv(a.iter().map(|s| sub(s)).collect()),
        CommandSpec::Shell(s) => CommandSpec::Shell(sub(s)),
    };
    for v in out.env.values_mut() {
        *v = sub(v);
    }
    let fix_probe = |probe: &mut Option<Box<ProbeSpec>>| {
        if let Some(pr) = probe {
            match &mut pr.target {
                ProbeTarget::Http { url, .. } => *url = sub(url),
                ProbeTarget::Tcp { addr, .. } | ProbeTarget::Udp { addr, .. } => *addr = sub(addr),
                ProbeTarget::Unix { path, .. } => *path = sub(&path.to_string_lossy()).into(),
                ProbeTarget::Exec { argv } => argv.iter_mut().for_each(|a| *a = sub(a)),
            }
        }
    };
    fix_probe(&mut out.startup);
    fix_probe(&mut out.readiness);
    fix_probe(&mut out.liveness);
    // Replicas must not share a log file: `{replica}` in the name, or `.N` before the
    // extension (`worker.log` → `worker.1.log`).
    if let Some(file) = &p.log.file {
        let text = file.to_string_lossy();
        out.log.file = Some(if text.contains("{replica}") {
            sub(&text).into()
        } else {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let name = match file.extension() {
                Some(ext) => format!("{stem}.{r}.{}", ext.to_string_lossy()),
                None => format!("{stem}.{r}"),
            };
            file.with_file_name(name)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    #[test]
    fn replicas_get_their_own_log_file_and_substituted_targets() {
        let s = load_str(
            Path::new("/etc/warden/warden.toml"),

            "[processes.w]\ncommand = \"x --port 80{replica}\"\nreplicas = 2\nlog = { file = \"logs/w.log\" }\n\
             [processes.w.liveness]\ntcp = \"127.0.0.1:80{replica}\"\n\
             [processes.v]\ncommand = \"x\"\nreplicas = 2\nlog = { file = \"v-{replica}.txt\" }\n",
        )
        .unwrap();
        let w = instances_of(&s.processes["w"], None);
        assert_eq!(w[1].name, "w.1");
        assert_eq!(
            w[1].spec.log.file.as_deref(),
            Some(Path::new("/etc/warden/logs/w.1.log"))
        );
        assert_eq!(
            w[1].spec.command,
            CommandSpec::Argv(vec!["x".into(), "--port".into(), "801".into()])
        );
        let v = instances_of(&s.processes["v"], None);
        assert_eq!(
            v[0].spec.log.file.as_deref(),
            Some(Path::new("/etc/warden/v-0.txt"))
        );
    }
}
