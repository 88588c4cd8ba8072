C     Known traffic from Fortran 77 (mpif.h); tests/src/expect.rs: traffic_fortran.
      PROGRAM TRAFFIC
      IMPLICIT NONE
      INCLUDE 'mpif.h'
      INTEGER R, N, IERR, P1, P2, M1, M2, I, REQ, PREQ, SUB, SR, SN
      INTEGER IBUF(200), IBUF2(200), STAT(MPI_STATUS_SIZE), VALS(4)
      DOUBLE PRECISION DBUF(8), DBUF2(8), WMEM(16)
      INTEGER WIN
      INTEGER(KIND=MPI_ADDRESS_KIND) WSIZE, DISP

      CALL MPI_INIT(IERR)
      CALL MPI_COMM_RANK(MPI_COMM_WORLD, R, IERR)
      CALL MPI_COMM_SIZE(MPI_COMM_WORLD, N, IERR)
      P1 = MOD(R + 1, N)
      P2 = MOD(R + 2, N)
      M1 = MOD(R - 1 + N, N)
      M2 = MOD(R - 2 + N, N)
      DO I = 1, 200
         IBUF(I) = R
      END DO
      DO I = 1, 8
         DBUF(I) = R
      END DO
C     Send 10(R+1) integers to R+1
      CALL MPI_IRECV(IBUF2, 200, MPI_INTEGER, M1, 1, MPI_COMM_WORLD,
     &               REQ, IERR)
      CALL MPI_SEND(IBUF, 10 * (R + 1), MPI_INTEGER, P1, 1,
     &              MPI_COMM_WORLD, IERR)
      CALL MPI_WAIT(REQ, STAT, IERR)
C     Isend 3 double precision to R+2
      CALL MPI_IRECV(DBUF2, 3, MPI_DOUBLE_PRECISION, M2, 2,
     &               MPI_COMM_WORLD, REQ, IERR)
      CALL MPI_ISEND(DBUF, 3, MPI_DOUBLE_PRECISION, P2, 2,
     &               MPI_COMM_WORLD, PREQ, IERR)
      CALL MPI_WAIT(PREQ, STAT, IERR)
      CALL MPI_WAIT(REQ, STAT, IERR)
C     Send_init 6 integers to R+1, started 4 times
      CALL MPI_SEND_INIT(IBUF, 6, MPI_INTEGER, P1, 3, MPI_COMM_WORLD,
     &                   PREQ, IERR)
      DO I = 1, 4
         CALL MPI_IRECV(IBUF2, 6, MPI_INTEGER, M1, 3, MPI_COMM_WORLD,
     &                  REQ, IERR)
         CALL MPI_START(PREQ, IERR)
         CALL MPI_WAIT(PREQ, STAT, IERR)
         CALL MPI_WAIT(REQ, STAT, IERR)
      END DO
      CALL MPI_REQUEST_FREE(PREQ, IERR)
C     Sendrecv 5 integers to R+2
      CALL MPI_SENDRECV(IBUF, 5, MPI_INTEGER, P2, 4, IBUF2, 5,
     &                  MPI_INTEGER, M2, 4, MPI_COMM_WORLD, STAT, IERR)
C     7 integers on the parity sub-communicator
      CALL MPI_COMM_SPLIT(MPI_COMM_WORLD, MOD(R, 2), R, SUB, IERR)
      CALL MPI_COMM_RANK(SUB, SR, IERR)
      CALL MPI_COMM_SIZE(SUB, SN, IERR)
      CALL MPI_SENDRECV(IBUF, 7, MPI_INTEGER, MOD(SR + 1, SN), 5,
     &                  IBUF2, 7, MPI_INTEGER, MOD(SR - 1 + SN, SN), 5,
     &                  SUB, STAT, IERR)
C     RMA: Put 2 doubles to R+1, Get 3 doubles from R+2
      WSIZE = 16 * 8
      CALL MPI_WIN_CREATE(WMEM, WSIZE, 8, MPI_INFO_NULL,
     &                    MPI_COMM_WORLD, WIN, IERR)
      CALL MPI_WIN_FENCE(0, WIN, IERR)
      DISP = 0
      CALL MPI_PUT(DBUF, 2, MPI_DOUBLE_PRECISION, P1, DISP, 2,
     &             MPI_DOUBLE_PRECISION, WIN, IERR)
      DISP = 4
      CALL MPI_GET(DBUF2, 3, MPI_DOUBLE_PRECISION, P2, DISP, 3,
     &             MPI_DOUBLE_PRECISION, WIN, IERR)
      CALL MPI_WIN_FENCE(0, WIN, IERR)
      CALL MPI_WIN_FREE(WIN, IERR)
C     In-place allreduce of 4 integers
      DO I = 1, 4
         VALS(I) = R
      END DO
      CALL MPI_ALLREDUCE(MPI_IN_PLACE, VALS, 4, MPI_INTEGER, MPI_SUM,
     &                   MPI_COMM_WORLD, IERR)
      IF (R .EQ. 0) PRINT '(A,I0)', 'fortran traffic done, sum ',
     &   VALS(1)
      CALL MPI_COMM_FREE(SUB, IERR)
      CALL MPI_FINALIZE(IERR)
      END
