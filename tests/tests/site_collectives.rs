//! Site-aware collectives (first slice: MPI_Bcast under a static site map): every root, on
//! the world and on sub-communicators, small to large, gives exactly what the library's own
//! broadcast gives, for layouts that break naive code — interleaved, site blocks, 1+7, three
//! sites — on both MPIs; and the regrouped path really runs.

use straddle_tests::mpi::{exclusive, Launch, BOTH};
use straddle_tests::paths::{program, Scratch};

#[test]
fn site_aware_bcast_matches_the_library_in_every_layout() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll");
    for mpi in BOTH {
        let exe = mpi.compile(&program("bcast.c"), &dir.0);
        let base = Launch::new(mpi, 8, &exe).arg(2).without_shim().run();
        assert!(base.success, "{}: {}", mpi.name(), base.stderr);
        assert_eq!(base.stdout.lines().filter(|l| l.contains("checksum")).count(), 8);
        for map in ["0,1,0,1,0,1,0,1", "0,0,0,0,1,1,1,1", "0,1,1,1,1,1,1,1", "0,1,2,0,1,2,0,1"] {
            let run = Launch::new(mpi, 8, &exe)
                .arg(2)
                .env("STRADDLE_REGROUP", 1)
                .env("STRADDLE_SITE_MAP", map)
                .env("STRADDLE_VERBOSE", 1)
                .env("STRADDLE_JOB", "sitecoll")
                .run();
            assert!(run.success, "{} [{map}]: {}", mpi.name(), run.stderr);
            assert_eq!(run.stdout, base.stdout, "{} [{map}]: results differ from the library's", mpi.name());
            let regrouped = run.stderr.lines().filter(|l| l.contains("site-aware collectives on a communicator of 8 ranks")).count();
            assert_eq!(regrouped, 8, "{} [{map}]: every rank regrouped the world:\n{}", mpi.name(), run.stderr);
        }
        // Without STRADDLE_REGROUP the map is not used.
        let off = Launch::new(mpi, 8, &exe).arg(1).env("STRADDLE_SITE_MAP", "0,1,0,1,0,1,0,1").env("STRADDLE_VERBOSE", 1).run();
        assert!(off.success && !off.stderr.contains("site-aware"), "{}", off.stderr);
    }
}
