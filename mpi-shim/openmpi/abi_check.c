/* The Open MPI constants the shim hard-codes (openmpi/src/lib.rs), checked against mpi.h. */
#include <mpi.h>
_Static_assert(sizeof(MPI_Comm) == sizeof(void *) && sizeof(MPI_Datatype) == sizeof(void *), "pointer handles");
_Static_assert(sizeof(MPI_Fint) == 4, "Fortran INTEGER is 4 bytes");
_Static_assert(sizeof(MPI_Aint) == 8 && sizeof(MPI_Count) == 8, "64-bit Aint and Count");
_Static_assert(MPI_PROC_NULL == -2 && MPI_ROOT == -4, "proc null and root");
_Static_assert(MPI_CART == 1 && MPI_GRAPH == 2 && MPI_DIST_GRAPH == 3, "topologies");
_Static_assert(MPI_SUCCESS == 0 && MPI_ERR_COUNT == 2, "success and the count error class");
/* Predefined handles are the addresses of these globals (resolved at run time). */
void *straddle_world(void) { return MPI_COMM_WORLD == (MPI_Comm)&ompi_mpi_comm_world ? (void *)0 : (void *)1; }
void *straddle_self(void) { return MPI_COMM_SELF == (MPI_Comm)&ompi_mpi_comm_self ? (void *)0 : (void *)1; }
void *straddle_byte(void) { return MPI_BYTE == (MPI_Datatype)&ompi_mpi_byte ? (void *)0 : (void *)1; }
void *straddle_in_place(void) { return MPI_IN_PLACE == (void *)1 ? (void *)0 : (void *)1; }
_Static_assert(MPI_THREAD_MULTIPLE == 3, "thread levels");
_Static_assert(MPI_UNDEFINED == -32766, "undefined color");
