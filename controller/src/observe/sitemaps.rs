//! Site-map epochs: every applied placement change bumps a job's epoch and publishes
//! rank → site to the job's ranks; a rank that attaches late gets the current map first.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::records::SiteMap;

#[derive(Default)]
pub struct SiteMaps {
    jobs: Mutex<HashMap<String, watch::Sender<Option<SiteMap>>>>,
}

impl SiteMaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<SiteMap>>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sender(&self, job: &str) -> watch::Sender<Option<SiteMap>> {
        self.lock().entry(job.to_string()).or_insert_with(|| watch::channel(None).0).clone()
    }

    /// The map `job` would get next for these ranks' sites: the current one when nothing
    /// changed, else one epoch more (from 1). Nothing is published.
    pub fn next(&self, job: &str, sites: Vec<String>, rank_site: Vec<u32>) -> SiteMap {
        let cur = self.current(job);
        match cur {
            Some(m) if m.sites == sites && m.rank_site == rank_site => m,
            other => SiteMap { job: job.to_string(), epoch: other.map_or(0, |m| m.epoch) + 1, rank_site, sites },
        }
    }

    /// Publishes a map (made by `next` and kept durably first). An older epoch than the
    /// current one is ignored.
    pub fn publish(&self, map: SiteMap) {
        self.sender(&map.job).send_if_modified(|cur| {
            if cur.as_ref().is_some_and(|c| c.epoch >= map.epoch && *c == map) {
                return false;
            }
            if cur.as_ref().is_some_and(|c| c.epoch > map.epoch) {
                return false;
            }
            *cur = Some(map);
            true
        });
    }

    /// The current map of `job`, if any.
    pub fn current(&self, job: &str) -> Option<SiteMap> {
        self.lock().get(job).and_then(|tx| tx.borrow().clone())
    }

    /// Changes to `job`'s map, the current one first.
    pub fn subscribe(&self, job: &str) -> watch::Receiver<Option<SiteMap>> {
        let mut rx = self.sender(job).subscribe();
        rx.mark_changed();
        rx
    }

    /// Forgets a job's map (its ranks keep the last one they got).
    pub fn remove(&self, job: &str) {
        self.lock().remove(job);
    }

    /// Jobs with a map or a subscriber.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn epochs_rise_and_late_subscribers_get_the_current_map() {
        let m = SiteMaps::default();
        let sites = vec!["A".to_string(), "B".to_string()];
        let first = m.next("cg", sites.clone(), vec![0, 0, 1, 1]);
        assert_eq!(first.epoch, 1);
        m.publish(first);
        let mut early = m.subscribe("cg");
        early.changed().await.unwrap();
        assert_eq!(early.borrow_and_update().as_ref().unwrap().epoch, 1);
        assert_eq!(m.next("cg", sites.clone(), vec![0, 0, 1, 1]).epoch, 1, "same map, same epoch");
        let second = m.next("cg", sites.clone(), vec![0, 0, 0, 0]);
        assert_eq!(second.epoch, 2);
        m.publish(second.clone());
        early.changed().await.unwrap();
        assert_eq!(early.borrow_and_update().as_ref().unwrap().rank_site, vec![0, 0, 0, 0]);
        let mut late = m.subscribe("cg");
        late.changed().await.unwrap();
        assert_eq!(late.borrow().as_ref().unwrap().epoch, 2);
        // An older epoch never replaces a newer one.
        m.publish(SiteMap { epoch: 1, ..second });
        assert_eq!(m.current("cg").unwrap().epoch, 2);
        assert!(m.current("other").is_none());
        assert_eq!(m.len(), 1, "reading does not create entries");
        m.remove("cg");
        assert!(m.is_empty());
    }
}
