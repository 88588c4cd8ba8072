/* The MPICH constants the shim hard-codes (mpich/src/lib.rs), checked against mpi.h. */
#include <mpi.h>
_Static_assert(sizeof(MPI_Comm) == 4 && sizeof(MPI_Datatype) == 4 && sizeof(MPI_Request) == 4, "int handles");
_Static_assert(sizeof(MPI_Win) == 4 && sizeof(MPI_Op) == 4 && sizeof(MPI_Info) == 4 && sizeof(MPI_Group) == 4, "int handles");
_Static_assert(sizeof(MPI_Aint) == 8 && sizeof(MPI_Count) == 8, "64-bit Aint and Count");
_Static_assert(MPI_COMM_WORLD == 0x44000000 && MPI_COMM_SELF == 0x44000001, "world and self");
_Static_assert(MPI_PROC_NULL == -1 && MPI_ROOT == -3, "proc null and root");
_Static_assert(MPI_BYTE == 0x4c00010d, "byte");
_Static_assert(MPI_GRAPH == 1 && MPI_CART == 2 && MPI_DIST_GRAPH == 3, "topologies");
_Static_assert(MPI_SUCCESS == 0 && MPI_ERR_COUNT == 2, "success and the count error class");
/* Builtin type handles encode their size in bits 8..15 (MPIR_Datatype_get_basic_size). */
_Static_assert(((MPI_DOUBLE >> 30) & 3) == 1 && ((MPI_DOUBLE & 0xff00) >> 8) == 8, "double");
_Static_assert(((MPI_INT >> 30) & 3) == 1 && ((MPI_INT & 0xff00) >> 8) == sizeof(int), "int");
_Static_assert(((MPI_CHAR >> 30) & 3) == 1 && ((MPI_CHAR & 0xff00) >> 8) == 1, "char");
_Static_assert(((MPI_C_DOUBLE_COMPLEX >> 30) & 3) == 1 && ((MPI_C_DOUBLE_COMPLEX & 0xff00) >> 8) == 16, "complex");
_Static_assert(((MPI_DOUBLE_PRECISION >> 30) & 3) == 1 && ((MPI_DOUBLE_PRECISION & 0xff00) >> 8) == 8, "fortran double");
_Static_assert(((MPI_FLOAT_INT >> 30) & 3) != 1, "pair types are not size-encoded builtins");
/* Fortran handles are the C handles (fortran_f08_mpich.rs converts by identity). */
_Static_assert(MPI_Comm_f2c(7) == 7 && MPI_Type_f2c(7) == 7 && MPI_Request_f2c(7) == 7, "identity f2c");
_Static_assert(MPI_THREAD_MULTIPLE == 3, "thread levels");
_Static_assert(MPI_UNDEFINED == -32766, "undefined color");
