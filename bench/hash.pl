# hash.pl - Perl hash/array churn.
# usage: perl hash.pl N
use strict;
use warnings;
my $n = $ARGV[0] // 300000;
my (%h, @a);
my $ck = 0;
for my $i (0 .. $n - 1) {
	my $k = "k" . ($i * 7919 % 50021) . "_" . ($i % 13);
	$h{$k} .= chr(97 + $i % 26);
	push @a, [$i, $k] if $i % 4 == 0;
	delete $h{"k" . (($i - 500) * 7919 % 50021) . "_" . (($i - 500) % 13)} if $i % 7 == 0 && $i >= 500;
	splice(@a, 0, 1000) if @a > 20000;
}
for my $k (sort keys %h) {
	$ck = ($ck * 31 + length($k) + length($h{$k})) % 1000000007;
}
my $joined = join(",", map { $_->[1] } @a);
my @parts = split /_/, $joined;
$ck = ($ck + scalar(@parts) + length($joined)) % 1000000007;
printf "perl n=%d keys=%d checksum=%d\n", $n, scalar(keys %h), $ck;
