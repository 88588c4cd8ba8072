! Known traffic from Fortran 2008 (use mpi_f08); tests/src/expect.rs: traffic_fortran.
program traffic
  use mpi_f08
  implicit none
  integer :: r, n, ierr, p1, p2, m1, m2, i, sr, sn
  type(MPI_Request) :: req, preq
  type(MPI_Comm) :: sub
  type(MPI_Status) :: stat
  integer :: ibuf(200), ibuf2(200), vals(4)
  double precision :: dbuf(8), dbuf2(8)
  type(MPI_Win) :: win
  integer(kind=MPI_ADDRESS_KIND) :: wsize, disp
  double precision :: wmem(16)

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, r, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, n, ierr)
  p1 = mod(r + 1, n); p2 = mod(r + 2, n); m1 = mod(r - 1 + n, n); m2 = mod(r - 2 + n, n)
  ibuf = r; dbuf = r

  ! Send 10(r+1) integers to r+1
  call MPI_Irecv(ibuf2, 200, MPI_INTEGER, m1, 1, MPI_COMM_WORLD, req, ierr)
  call MPI_Send(ibuf, 10 * (r + 1), MPI_INTEGER, p1, 1, MPI_COMM_WORLD, ierr)
  call MPI_Wait(req, stat, ierr)
  ! Isend 3 double precision to r+2
  call MPI_Irecv(dbuf2, 3, MPI_DOUBLE_PRECISION, m2, 2, MPI_COMM_WORLD, req, ierr)
  call MPI_Isend(dbuf, 3, MPI_DOUBLE_PRECISION, p2, 2, MPI_COMM_WORLD, preq, ierr)
  call MPI_Wait(preq, stat, ierr)
  call MPI_Wait(req, stat, ierr)
  ! Send_init 6 integers to r+1, started 4 times
  call MPI_Send_init(ibuf, 6, MPI_INTEGER, p1, 3, MPI_COMM_WORLD, preq, ierr)
  do i = 1, 4
    call MPI_Irecv(ibuf2, 6, MPI_INTEGER, m1, 3, MPI_COMM_WORLD, req, ierr)
    call MPI_Start(preq, ierr)
    call MPI_Wait(preq, stat, ierr)
    call MPI_Wait(req, stat, ierr)
  end do
  call MPI_Request_free(preq, ierr)
  ! Sendrecv 5 integers to r+2
  call MPI_Sendrecv(ibuf, 5, MPI_INTEGER, p2, 4, ibuf2, 5, MPI_INTEGER, m2, 4, MPI_COMM_WORLD, stat, ierr)
  ! 7 integers on the parity sub-communicator
  call MPI_Comm_split(MPI_COMM_WORLD, mod(r, 2), r, sub, ierr)
  call MPI_Comm_rank(sub, sr, ierr)
  call MPI_Comm_size(sub, sn, ierr)
  call MPI_Sendrecv(ibuf, 7, MPI_INTEGER, mod(sr + 1, sn), 5, ibuf2, 7, MPI_INTEGER, &
                    mod(sr - 1 + sn, sn), 5, sub, stat, ierr)
  ! RMA: Put 2 doubles to r+1, Get 3 doubles from r+2
  wsize = 16 * 8
  call MPI_Win_create(wmem, wsize, 8, MPI_INFO_NULL, MPI_COMM_WORLD, win, ierr)
  call MPI_Win_fence(0, win, ierr)
  disp = 0
  call MPI_Put(dbuf, 2, MPI_DOUBLE_PRECISION, p1, disp, 2, MPI_DOUBLE_PRECISION, win, ierr)
  disp = 4
  call MPI_Get(dbuf2, 3, MPI_DOUBLE_PRECISION, p2, disp, 3, MPI_DOUBLE_PRECISION, win, ierr)
  call MPI_Win_fence(0, win, ierr)
  call MPI_Win_free(win, ierr)
  ! In-place allreduce of 4 integers
  vals = r
  call MPI_Allreduce(MPI_IN_PLACE, vals, 4, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  if (r == 0) print '(a,i0)', 'fortran traffic done, sum ', vals(1)
  call MPI_Comm_free(sub, ierr)
  call MPI_Finalize(ierr)
end program traffic
