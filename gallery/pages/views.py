from django.http import HttpResponse


def home(request):
    return HttpResponse("The Gallery")


def product_detail(request, uuid):
    return HttpResponse("product")


def source_detail(request, slug):
    return HttpResponse("source")


def revolution_detail(request, number):
    return HttpResponse("revolution")
