! Site-aware collectives from Fortran (use mpi): results checked against values computed
! by hand, including MPI_IN_PLACE, on the world and a reversed sub-communicator.
! Usage: collectives_f ROUNDS. Rank 0 prints "fortran: N cases, M failures".
program collectives_f
  use mpi
  implicit none
  integer :: ierr, wr, wn, k, rounds, c, sub, comm, r, n, i, j, root
  integer :: cases, failures, tot(2), sums(2)
  integer, parameter :: m = 37
  integer :: a(m), b(m * 16), e(m * 16), g(m * 16)
  character(len=16) :: arg

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, wr, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, wn, ierr)
  rounds = 2
  if (command_argument_count() > 0) then
    call get_command_argument(1, arg)
    read (arg, *) rounds
  end if
  call MPI_Comm_split(MPI_COMM_WORLD, 0, wn - wr, sub, ierr)
  cases = 0
  failures = 0
  do k = 1, rounds
    do c = 1, 2
      if (c == 1) then
        comm = MPI_COMM_WORLD
      else
        comm = sub
      end if
      call MPI_Comm_rank(comm, r, ierr)
      call MPI_Comm_size(comm, n, ierr)
      call MPI_Barrier(comm, ierr)
      root = mod(k + c, n)

      ! Allreduce in place: sum over ranks of (rank + i + k).
      do i = 1, m
        a(i) = r + i + k
      end do
      call MPI_Allreduce(MPI_IN_PLACE, a, m, MPI_INTEGER, MPI_SUM, comm, ierr)
      call expect('allreduce in place', all(a == [(n * (i + k) + n * (n - 1) / 2, i = 1, m)]))

      ! Bcast from root.
      a = -1
      if (r == root) a = [(i * 3 + k, i = 1, m)]
      call MPI_Bcast(a, m, MPI_INTEGER, root, comm, ierr)
      call expect('bcast', all(a == [(i * 3 + k, i = 1, m)]))

      ! Reduce (max) to root, in place at the root.
      a = [(r * i + k, i = 1, m)]
      if (r == root) then
        call MPI_Reduce(MPI_IN_PLACE, a, m, MPI_INTEGER, MPI_MAX, root, comm, ierr)
        call expect('reduce in place', all(a == [((n - 1) * i + k, i = 1, m)]))
      else
        call MPI_Reduce(a, b, m, MPI_INTEGER, MPI_MAX, root, comm, ierr)
      end if

      ! Gather in place at the root, allgather in place.
      do j = 0, n - 1
        do i = 1, m
          e(j * m + i) = j * 100 + i + k
        end do
      end do
      g = -1
      g(r * m + 1:r * m + m) = e(r * m + 1:r * m + m)
      if (r == root) then
        call MPI_Gather(MPI_IN_PLACE, m, MPI_INTEGER, g, m, MPI_INTEGER, root, comm, ierr)
        call expect('gather in place', all(g(1:n * m) == e(1:n * m)))
      else
        call MPI_Gather(g(r * m + 1), m, MPI_INTEGER, b, m, MPI_INTEGER, root, comm, ierr)
      end if
      g = -1
      g(r * m + 1:r * m + m) = e(r * m + 1:r * m + m)
      call MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, g, m, MPI_INTEGER, comm, ierr)
      call expect('allgather in place', all(g(1:n * m) == e(1:n * m)))

      ! Scatter from the root.
      a = -1
      call MPI_Scatter(e, m, MPI_INTEGER, a, m, MPI_INTEGER, root, comm, ierr)
      call expect('scatter', all(a == e(r * m + 1:r * m + m)))

      ! Alltoall: block j of rank r is r * 1000 + j; rank r receives j * 1000 + r from j.
      do j = 0, n - 1
        b(j * 2 + 1:j * 2 + 2) = r * 1000 + j
      end do
      call MPI_Alltoall(b, 2, MPI_INTEGER, g, 2, MPI_INTEGER, comm, ierr)
      call expect('alltoall', all(g(1:2 * n) == [((j * 1000 + r, i = 1, 2), j = 0, n - 1)]))

      ! Reduce_scatter_block in place: element i of rank r's vector is r + i.
      b(1:2 * n) = [(r + i, i = 1, 2 * n)]
      call MPI_Reduce_scatter_block(MPI_IN_PLACE, b, 2, MPI_INTEGER, MPI_SUM, comm, ierr)
      call expect('reduce_scatter_block in place', all(b(1:2) == [(n * (2 * r + i) + n * (n - 1) / 2, i = 1, 2)]))

      ! Scan (sum of ranks 0..r of rank + k) and exscan.
      a(1) = r + k
      call MPI_Scan(a, b, 1, MPI_INTEGER, MPI_SUM, comm, ierr)
      call expect('scan', b(1) == r * (r + 1) / 2 + (r + 1) * k)
      call MPI_Exscan(a, b, 1, MPI_INTEGER, MPI_SUM, comm, ierr)
      if (r > 0) call expect('exscan', b(1) == (r - 1) * r / 2 + r * k)
    end do
  end do
  tot = [cases, failures]
  call MPI_Reduce(tot, sums, 2, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, ierr)
  if (wr == 0) print '(a, i0, a, i0, a)', 'fortran: ', sums(1), ' cases, ', sums(2), ' failures'
  call MPI_Comm_free(sub, ierr)
  call MPI_Finalize(ierr)

contains

  subroutine expect(what, ok)
    character(len=*), intent(in) :: what
    logical, intent(in) :: ok
    cases = cases + 1
    if (.not. ok) then
      failures = failures + 1
      write (0, '(a, a, a, i0, a, i0)') 'FAIL ', what, ' world rank ', wr, ' round ', k
    end if
  end subroutine expect
end program collectives_f
