//! Site-map epochs: every applied placement change bumps a job's epoch and publishes
//! rank → site to the job's ranks; a rank that attaches late gets the current map first.

use std::collections::HashMap;
use std::sync::Mutex;

use straddle_proto::SiteMap;
use tokio::sync::watch;

#[derive(Default)]
pub struct SiteMaps {
    jobs: Mutex<HashMap<String, watch::Sender<Option<SiteMap>>>>,
}

impl SiteMaps {
    fn sender(&self, job: &str) -> watch::Sender<Option<SiteMap>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).entry(job.to_string()).or_insert_with(|| watch::channel(None).0).clone()
    }

    /// Publishes a new placement of `job`'s ranks; returns its epoch (one more than the
    /// last, starting at 1). An unchanged map is not republished.
    pub fn publish(&self, job: &str, sites: Vec<String>, rank_site: Vec<u32>) -> u64 {
        let tx = self.sender(job);
        let mut epoch = 0;
        tx.send_if_modified(|cur| {
            if let Some(m) = cur {
                if m.sites == sites && m.rank_site == rank_site {
                    epoch = m.epoch;
                    return false;
                }
            }
            epoch = cur.as_ref().map_or(0, |m| m.epoch) + 1;
            *cur = Some(SiteMap { job: job.to_string(), epoch, rank_site, sites });
            true
        });
        epoch
    }

    /// Restores a map at its recorded epoch (after a restart), without bumping.
    pub fn restore(&self, map: SiteMap) {
        let tx = self.sender(&map.job);
        tx.send_replace(Some(map));
    }

    /// The current map of `job`, if any.
    pub fn current(&self, job: &str) -> Option<SiteMap> {
        self.sender(job).borrow().clone()
    }

    /// Changes to `job`'s map, the current one first.
    pub fn subscribe(&self, job: &str) -> watch::Receiver<Option<SiteMap>> {
        let mut rx = self.sender(job).subscribe();
        rx.mark_changed();
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn epochs_rise_and_late_subscribers_get_the_current_map() {
        let m = SiteMaps::default();
        let sites = vec!["A".to_string(), "B".to_string()];
        assert_eq!(m.publish("cg", sites.clone(), vec![0, 0, 1, 1]), 1);
        let mut early = m.subscribe("cg");
        early.changed().await.unwrap();
        assert_eq!(early.borrow_and_update().as_ref().unwrap().epoch, 1);
        assert_eq!(m.publish("cg", sites.clone(), vec![0, 0, 1, 1]), 1, "same map, same epoch");
        assert_eq!(m.publish("cg", sites.clone(), vec![0, 0, 0, 0]), 2);
        early.changed().await.unwrap();
        assert_eq!(early.borrow_and_update().as_ref().unwrap().rank_site, vec![0, 0, 0, 0]);
        let mut late = m.subscribe("cg");
        late.changed().await.unwrap();
        assert_eq!(late.borrow().as_ref().unwrap().epoch, 2);
        assert!(m.current("other").is_none());
    }
}
