//! The controller's long-running tasks, supervised: a task that panics is reported (log and
//! health) and restarted after a backoff instead of stopping in silence.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Status {
    Running,
    /// It died and is restarted after a backoff.
    Restarting {
        reason: String,
        restarts: u32,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub name: String,
    pub status: Status,
    /// Times it died since the controller started.
    pub deaths: u32,
    pub last_death: Option<String>,
}

#[derive(Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, Component>>,
}

impl Health {
    fn set(&self, name: &str, f: impl FnOnce(&mut Component)) {
        let mut g = self.components.lock().unwrap_or_else(|p| p.into_inner());
        let c = g.entry(name.to_string()).or_insert_with(|| Component {
            name: name.to_string(),
            status: Status::Running,
            deaths: 0,
            last_death: None,
        });
        f(c);
    }

    pub fn components(&self) -> Vec<Component> {
        self.components.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Healthy when every component runs.
    pub fn healthy(&self) -> bool {
        self.components().iter().all(|c| c.status == Status::Running)
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Runs the task `make` builds, again after each panic (waiting 1 s, doubling to 60 s),
/// reporting each death; returns when the task ends by itself.
pub fn supervise<F, Fut>(name: &'static str, health: Arc<Health>, make: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            health.set(name, |c| c.status = Status::Running);
            match tokio::spawn(make()).await {
                Ok(()) => {
                    health.set(name, |c| c.status = Status::Stopped { reason: "it ended".into() });
                    return;
                }
                Err(e) if e.is_panic() => {
                    let why = panic_message(e);
                    tracing::error!(task = name, "the {name} died: {why}; restarting in {backoff:?}");
                    health.set(name, |c| {
                        c.deaths += 1;
                        c.last_death = Some(why.clone());
                        c.status = Status::Restarting { reason: why.clone(), restarts: c.deaths };
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Err(e) => {
                    health.set(name, |c| c.status = Status::Stopped { reason: e.to_string() });
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_task_that_dies_is_reported_and_restarted() {
        let h = Arc::new(Health::default());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = supervise("decision loop", h.clone(), move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("boom");
                }
                std::future::pending::<()>().await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = &h.components()[0];
        assert_eq!(c.deaths, 1);
        assert!(matches!(&c.status, Status::Restarting { reason, .. } if reason == "boom"), "{c:?}");
        assert!(!h.healthy());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(h.components()[0].status, Status::Running);
        assert_eq!(h.components()[0].last_death.as_deref(), Some("boom"));
        task.abort();
    }
}
